"""Issue 21: the carbon (Scope 2) report streams member by member — the same figures and the
same file as when it computed every member × hour in memory, with a peak memory that does not
grow with members × hours; a report file is verified reading it in chunks."""

from __future__ import annotations

import io
import json
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from apps.compliance.reports import report_build, report_verify
from apps.compliance.reports.document import DATA_MARKER, Table, canonical_data, parse_csv_stream
from apps.compliance.services import report_export
from apps.incentives.models import Certificate, EmissionFactor
from apps.incentives.selectors import carbon_by_member, carbon_by_member_iter
from apps.incentives.services import (
    certificate_claim,
    certificates_claim_for_consumption,
    certificates_issue,
)
from apps.incentives.tests.factories import (
    MemberFactory,
    MeterFactory,
    PVMeterFactory,
    emission_factors,
)
from apps.meters.models import Quality
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import reading_table_queries

pytestmark = pytest.mark.django_db

Q = timedelta(minutes=15)
H = timedelta(hours=1)
# Around a month boundary, so the report has two months and two sets of factors.
T0 = datetime(2026, 6, 30, 18, tzinfo=UTC)
START, END = datetime(2026, 6, 29, tzinfo=UTC), datetime(2026, 7, 2, tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _months() -> list[tuple[datetime, datetime]]:
    return [(START, datetime(2026, 7, 1, tzinfo=UTC)), (datetime(2026, 7, 1, tzinfo=UTC), END)]


def _old_carbon_tables(member_ids: list[int] | None = None) -> tuple[list[Table], list]:
    """The carbon report's tables as the builder made them before it streamed: every member's
    hours in memory through `carbon_by_member` (kept as the reference)."""
    coop_t = Table("cooperative", ["month", "members", "consumption_wh",
                                   "certificate_covered_wh", "location_based_kg_co2e",
                                   "market_based_kg_co2e"])  # fmt: skip
    members_t = Table("members", ["month", "member", "consumption_wh", "certificate_covered_wh",
                                  "uncovered_wh", "location_based_kg_co2e",
                                  "market_based_kg_co2e"])  # fmt: skip
    certs_t = Table("certificates_used", ["month", "member", "certificate", "production_hour",
                                          "claimed_wh", "used_wh"])  # fmt: skip
    grand = [0, 0, Decimal(0), Decimal(0)]
    for m_start, m_end in _months():
        month = f"{m_start:%Y-%m}"
        coop = [0, 0, 0, Decimal(0), Decimal(0)]
        for mc in carbon_by_member(start=m_start, end=m_end, member_ids=member_ids):
            r = mc.result
            if not r.consumption_wh and not r.uses:
                continue
            members_t.rows.append([month, mc.membership_number, r.consumption_wh, r.covered_wh,
                                   r.uncovered_wh, r.location_kg, r.market_kg])  # fmt: skip
            for u in r.uses:
                certs_t.rows.append([month, mc.membership_number, u.ref, _iso(u.hour_start),
                                     u.wh_claimed, u.wh_used])  # fmt: skip
            for i, v in enumerate((1, r.consumption_wh, r.covered_wh, r.location_kg,
                                   r.market_kg)):  # fmt: skip
                coop[i] += v
        if coop[0]:
            coop_t.rows.append([month, *coop])
            for i in range(4):
                grand[i] += coop[i + 1]
    totals = [*grand, len(certs_t.rows)]
    return [coop_t, members_t, certs_t], totals


@pytest.fixture
def cooperative(db):
    """Five members over 8 hours across June/July: own PV claimed hour by hour, a certificate
    claimed in part, certificates claimed for hours without consumption, a member with
    certificates but no consumption at all, one without certificates, questionable readings
    (not counted), and other factors in July."""
    emission_factors(location="380", residual="520")
    EmissionFactor.objects.create(
        market_zone="DE-LU",
        basis="location",
        valid_from=date(2026, 7, 1),
        g_co2e_per_kwh=Decimal("310"),
    )
    EmissionFactor.objects.create(market_zone="DE-LU", basis="residual_mix",
                                  valid_from=date(2026, 7, 1),
                                  g_co2e_per_kwh=Decimal("555.5"))  # fmt: skip
    a_pv, b_pv, d_pv = PVMeterFactory(), PVMeterFactory(), PVMeterFactory()
    a, b, d = a_pv.member, b_pv.member, d_pv.member
    c, e = MemberFactory(), MemberFactory()
    houses = {m.pk: MeterFactory(member=m, asset_kind="household", direction="import")
              for m in (a, b, c, e)}  # fmt: skip
    rows = []
    for k in range(32):
        t = T0 + k * Q
        for n, pv in enumerate((a_pv, b_pv, d_pv)):
            rows.append(BackfillRow(meter_id=pv.pk, interval_start=t, import_wh=0,
                                    export_wh=150 + 37 * n + 11 * (k % 3)))  # fmt: skip
        for n, (member_id, house) in enumerate(houses.items()):
            if member_id == b.pk and k >= 16:
                continue  # b consumes only in June: its July certificates are unused
            quality = Quality.QUESTIONABLE if (n, k) in ((0, 3), (2, 20)) else Quality.VALID
            rows.append(BackfillRow(meter_id=house.pk, interval_start=t,
                                    import_wh=90 + 13 * n + 7 * (k % 5), export_wh=0,
                                    quality=quality))  # fmt: skip
    readings_backfill(rows=rows)
    certificates_issue(start=T0, end=T0 + 8 * H, now=T0 + 3 * 24 * H)
    certificates_claim_for_consumption(member=a, start=T0, end=T0 + 8 * H, beneficiary="A")
    for n, cert in enumerate(Certificate.objects.filter(owner=b, status="active")
                             .order_by("production_start")):  # fmt: skip
        certificate_claim(certificate_id=cert.pk, member=b, beneficiary="B",
                          wh=cert.wh // 2 if n % 2 else None)  # fmt: skip
    for cert in Certificate.objects.filter(owner=d, status="active")[:3]:
        certificate_claim(certificate_id=cert.pk, member=d, beneficiary="D", wh=100)
    # Factors other than solar's 0 g, so the lowest-emission-first order matters.
    Certificate.objects.filter(owner=b, status="claimed", range_start__gt=0).update(
        emission_factor=Decimal("24.5")
    )
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


def test_streamed_member_figures_equal_the_in_memory_ones(cooperative):
    june = carbon_by_member(start=_months()[0][0], end=_months()[0][1])
    assert any(r.result.uses and not r.result.consumption_wh for r in june)  # d
    assert any(0 < u.wh_used < u.wh_claimed for r in june for u in r.result.uses)  # b
    assert any(u.wh_used == 0 < u.wh_claimed for r in june for u in r.result.uses)
    for m_start, m_end in _months():
        old = carbon_by_member(start=m_start, end=m_end)
        assert len(old) == 5
        assert list(carbon_by_member_iter(start=m_start, end=m_end, batch=2)) == old
        assert list(carbon_by_member_iter(start=m_start, end=m_end)) == old
        one = [cooperative["b"].pk]
        assert list(carbon_by_member_iter(start=m_start, end=m_end, member_ids=one)) == (
            carbon_by_member(start=m_start, end=m_end, member_ids=one)
        )


def test_the_streamed_report_is_the_same_file_as_the_in_memory_one(cooperative):
    tables, (consumption, covered, location, market, used) = _old_carbon_tables()
    assert len(tables[0].rows) == 2 and len(tables[2].rows) > 10
    doc = report_build(kind="carbon", start=START, end=END)
    assert doc.streamed
    data = b"".join(doc.iter_data())
    assert data == canonical_data(tables)
    assert doc.content_hash == report_build(kind="carbon", start=START, end=END).content_hash
    assert dict(doc.totals) == {
        "Consumption (Wh)": consumption,
        "Covered by claimed certificates (Wh)": covered,
        "Location-based (kg CO2e)": location,
        "Market-based (kg CO2e)": market,
        "Certificates used": used,
    }
    assert doc.row_count == sum(len(t.rows) for t in tables)
    b = cooperative["b"]
    one = report_build(kind="carbon", start=START, end=END, member_id=b.pk)
    assert b"".join(one.iter_data()) == canonical_data(_old_carbon_tables([b.pk])[0])


def _report_peak() -> int:
    """Peak traced Python memory of building the month report and writing it as CSV."""
    tracemalloc.start()
    try:
        doc = report_build(kind="carbon", start=START, end=END)
        for _chunk in doc.iter_data():
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak


def _members_with_two_days(count: int) -> None:
    rows = []
    for _ in range(count):
        meter = MeterFactory(member=MemberFactory(), asset_kind="household", direction="import")
        rows += [BackfillRow(meter_id=meter.pk, interval_start=START + k * Q,
                             import_wh=100 + k % 9, export_wh=0) for k in range(192)]  # fmt: skip
    readings_backfill(rows=rows)


def test_peak_memory_does_not_grow_with_members_times_hours(db):
    """60 members × 48 hours, then 160 × 48: 4,800 more member-hours. In memory the report held
    every member-hour (~1 KiB each with its query row: ~5 MiB more here); streamed, the peak
    grows only by the finished members' results waiting for their membership numbers."""
    emission_factors(location="380", residual="520")
    _members_with_two_days(60)
    _report_peak()  # first-use costs
    small = _report_peak()
    _members_with_two_days(100)
    large = _report_peak()
    assert large - small < 512 * 2**10, (small, large)


def test_verify_report_reads_the_file_in_chunks(cooperative, tmp_path, capsys):
    doc = report_build(kind="carbon", start=START, end=END)
    body, _, _ = report_export(doc=doc, fmt="csv", actor=None)
    parsed = parse_csv_stream(io.BytesIO(body), chunk_size=64)
    assert parsed.data == b"" and parsed.computed_hash == doc.content_hash
    assert report_verify(io.BytesIO(body)).as_dict() == report_verify(body).as_dict()
    tampered = body.replace(b"\n2026-06,", b"\n2026-07,", 1)
    assert report_verify(io.BytesIO(tampered)).verdict == "TAMPERED"
    path = tmp_path / "carbon.csv"
    path.write_bytes(body)
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_report", str(path), "--against-db")
    out = json.loads(capsys.readouterr().out)
    assert exit_.value.code == 2 and out["verdict"] == "NOT_YET_ANCHORED", out
    assert out["content_sha256_from_database"] == out["content_sha256_computed"] == doc.content_hash
    assert DATA_MARKER.encode() in body


def test_the_member_hours_are_read_once_whatever_the_passes(cooperative):
    """The cooperative table and totals, the hash pass and the CSV pass all come from one scan
    of the member-hours per month (it used to be one per pass: three times the CPU)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        doc = report_build(kind="carbon", start=START, end=END)
        first = b"".join(doc.iter_data())
        second = b"".join(doc.iter_data())
    assert first == second == canonical_data(_old_carbon_tables()[0])
    scans = [q["sql"] for q in reading_table_queries(queries.captured_queries)]
    assert len(scans) == len(_months()), scans


def test_spilled_rows_read_back_in_order_on_interleaved_passes():
    from apps.compliance.reports.spill import SpilledRows

    spill = SpilledRows(batch=3)
    rows = [["2026-06", f"M{n}", n, Decimal(n) / 7] for n in range(10)]
    for row in rows:
        spill.append(row)
    one, two = spill.rows(), spill.rows()
    interleaved = [(a, b) for a, b in zip(one, two, strict=True)]
    assert [a for a, _ in interleaved] == [b for _, b in interleaved] == rows
    assert len(spill) == 10 and list(spill.rows()) == rows
