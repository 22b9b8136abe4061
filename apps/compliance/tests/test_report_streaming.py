"""The interval-data report streams: its CSV is hashed and written in chunks from a server-side
cursor, byte for byte the file it was before, and memory does not grow with its rows; XLSX and
PDF, built whole, are refused above their row limits with a pointer to CSV."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.urls import reverse

from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.compliance.reports import report_build, report_verify
from apps.compliance.reports.document import (
    DATA_MARKER,
    ReportChangedError,
    ReportDocument,
    Table,
    canonical_data,
    iter_canonical_data,
    iter_render_csv,
    sha256_hex,
)
from apps.incentives.tests.factories import MemberFactory, MeterFactory
from apps.meters.selectors import interval_readings_iter
from apps.meters.services import BackfillRow, readings_backfill

from .conftest import DAY

pytestmark = pytest.mark.django_db

END = DAY + timedelta(days=1)
COLUMNS = [
    "meter",
    "member",
    "interval_start",
    "interval_seconds",
    "import_wh",
    "export_wh",
    "quality",
    "version",
    "device_signed",
]
TRICKY_ROWS = [
    ["M-1", "=HYPERLINK(1)", datetime(2026, 6, 4, tzinfo=UTC).isoformat(), 900, 120, 0, 1, 1,
     "yes"],
    ["M-2", "a\rb", "2026-06-04T00:15:00+00:00", 900, Decimal("1.50"), None, 7, 2, "no"],
    ["M,3", 'say "hi"', "2026-06-04T00:30:00+00:00", 900, -3, True, 8, 1, "-12"],
]  # fmt: skip
# The canonical data of TRICKY_ROWS as the report module wrote it before streaming (formula
# text escaped, a bare CR quoted, decimals plain, None empty).
TRICKY_SHA256 = "6af4d015ec9c876db6713d9c658a851d64b917abced47927a8c9e82553f54034"


def _streamed(rows, chunk_rows):
    return iter_canonical_data(
        [Table("intervals", COLUMNS, source=lambda: iter(rows))], chunk_rows=chunk_rows
    )


def test_streamed_canonical_data_is_the_bytes_it_was_before():
    assert sha256_hex(canonical_data([Table("intervals", COLUMNS, TRICKY_ROWS)])) == TRICKY_SHA256
    for chunk_rows in (1, 2, 1000):
        chunks = list(_streamed(TRICKY_ROWS, chunk_rows))
        assert sha256_hex(b"".join(chunks)) == TRICKY_SHA256
    assert len(list(_streamed(TRICKY_ROWS, 1))) == 3  # a chunk per row (+ the table header)


def _download(client, **params):
    url = reverse("compliance:report_download", args=["interval_data", "csv"])
    return client.get(url, {"start": DAY.date().isoformat(), "end": END.date().isoformat(),
                            **params})  # fmt: skip


def _old_interval_rows(member_id=None):
    """The rows exactly as the report built them in memory before it streamed."""
    return [
        [serial, number, t.astimezone(UTC).isoformat(), secs, i, e, q, v,
         "yes" if signed else "no"]
        for serial, number, t, secs, i, e, q, v, signed in interval_readings_iter(
            start=DAY, end=END, member_id=member_id
        )
    ]  # fmt: skip


def test_the_interval_data_csv_streams_the_same_content_verifies_and_is_audited(
    world, auditor_client
):
    before = AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).count()
    response = _download(auditor_client)
    assert response.status_code == 200
    assert response.streaming
    # The export is anchored (queued) and audited before the first byte is sent.
    log = AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).order_by("-id").first()
    assert AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).count() == before + 1
    raw = b"".join(response.streaming_content)
    head, data = raw.split((DATA_MARKER + "\n").encode(), 1)
    old_rows = _old_interval_rows()
    assert data == canonical_data([Table("intervals", COLUMNS, old_rows)])
    assert len(old_rows) == 3 * 96 - 2
    assert response["X-Content-SHA256"] == sha256_hex(data) == log.details["content_sha256"]
    assert log.details["rows"] == len(old_rows)
    assert log.details["anchor_intent"]
    assert f"# content_sha256: {sha256_hex(data)}" in head.decode()
    assert '# total: ["Intervals", "286"]' in head.decode()
    result = report_verify(raw, against_db=True)
    assert result.verdict == "NOT_YET_ANCHORED", result.as_dict()  # sealed, intact, queued
    assert result.db_hash == sha256_hex(data)


def test_a_member_cannot_download_the_interval_data_report(world):
    client = Client()
    client.force_login(world.consumer.user)
    before = AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).count()
    assert _download(client).status_code == 403
    assert AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).count() == before


def test_a_report_that_changes_between_hash_and_download_breaks_the_stream(world):
    doc = report_build(kind="interval_data", start=DAY, end=END)
    rows = _old_interval_rows()
    rows[7][4] += 1
    doc.tables[0].source = lambda: iter(rows)
    with pytest.raises(ReportChangedError):
        b"".join(iter_render_csv(doc))


@pytest.mark.parametrize("fmt", ["xlsx", "pdf"])
def test_whole_file_formats_are_refused_above_their_row_limit(world, auditor_client, settings, fmt):
    settings.REPORT_XLSX_MAX_ROWS = settings.REPORT_PDF_MAX_ROWS = 100
    before = AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).count()
    url = reverse("compliance:report_download", args=["interval_data", fmt])
    response = auditor_client.get(url, {"start": DAY.date().isoformat(),
                                        "end": END.date().isoformat()})  # fmt: skip
    assert response.status_code == 400
    text = response.content.decode()
    assert "286 rows" in text and "limited to 100 rows" in text and "CSV" in text
    assert AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).count() == before
    # a member's smaller report still downloads in that format
    number = world.consumer.membership_number
    period = {"start": DAY.date().isoformat(), "end": END.date().isoformat()}
    response = auditor_client.get(url, {**period, "member": number})
    assert response.status_code == 200  # 94 rows


def _meters_with_a_day_of_readings(count: int) -> None:
    member = MemberFactory()
    rows = []
    for _ in range(count):
        meter = MeterFactory(member=member, asset_kind="household", direction="import")
        rows += [
            BackfillRow(meter_id=meter.pk, interval_start=DAY + k * timedelta(minutes=15),
                        import_wh=100 + k, export_wh=0)
            for k in range(96)
        ]  # fmt: skip
    readings_backfill(rows=rows)


def _traced_download(client) -> tuple[int, int]:
    """Peak traced Python memory of one streamed download, and its lines (the body is read
    chunk by chunk as a client saving it would, never held)."""
    newlines = 0
    tracemalloc.start()
    try:
        response = _download(client)
        assert response.status_code == 200
        for chunk in response.streaming_content:
            newlines += chunk.count(b"\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, newlines


def test_peak_memory_does_not_grow_with_the_rows(auditor_client):
    """11,520 rows, then 30,720: the peak stays within 512 KiB (before streaming it grew by
    ~1 KiB a row, ~20 MiB here). Both sizes span more than two cursor fetches (5,000 rows), the
    most the stream ever holds."""
    _meters_with_a_day_of_readings(120)
    _traced_download(auditor_client)  # first-use costs (imports, templates, caches)
    small_peak, small_lines = _traced_download(auditor_client)
    _meters_with_a_day_of_readings(200)
    large_peak, large_lines = _traced_download(auditor_client)
    assert large_lines - small_lines == 200 * 96
    assert large_peak - small_peak < 512 * 2**10, (small_peak, large_peak)


def test_a_streamed_document_hashes_without_holding_its_data():
    rows = [["M", str(n), "t", 900, n, 0, 1, 1, "no"] for n in range(5000)]
    doc = ReportDocument(
        "interval_data", "t", {}, [Table("intervals", COLUMNS, source=lambda: iter(rows))]
    )
    assert doc.content_hash == sha256_hex(canonical_data([Table("intervals", COLUMNS, rows)]))
    assert doc.row_count == 5000
    assert "data" not in doc.__dict__  # the whole data was never materialised


def test_under_asgi_the_csv_is_an_asynchronous_stream(world, auditor_client):
    """Django reads a synchronous iterator whole into memory under ASGI (the production server):
    the download there is an asynchronous iterator producing one chunk at a time."""
    client = AsyncClient()
    client.cookies = auditor_client.cookies
    url = reverse("compliance:report_download", args=["interval_data", "csv"])
    period = {"start": DAY.date().isoformat(), "end": END.date().isoformat()}

    async def download():
        response = await client.get(url, period)
        return response, [chunk async for chunk in response.streaming_content]

    response, chunks = async_to_sync(download)()
    assert response.status_code == 200
    assert response.is_async
    raw = b"".join(chunks)
    assert report_verify(raw, against_db=True).verdict == "NOT_YET_ANCHORED"
