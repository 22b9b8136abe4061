"""Acceptance: every report downloads for an auditor as CSV, XLSX and PDF, verifies against its
own hash and the database, is audit-logged, and is 403 for a member; PDF totals = DB totals."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.chain.outbox import chain_outbox_sweep
from apps.compliance.reports import REPORTS, report_verify
from apps.compliance.reports.document import DATA_MARKER, sha256_hex
from apps.compliance.reports.pdf import pdf_text
from apps.incentives.models import Certificate
from apps.market.models import Trade
from apps.meters.tests.factories import current_readings, reading_tamper, reading_versions

from .conftest import DAY, MONTH

pytestmark = pytest.mark.django_db


def _download(client, kind, fmt, **params):
    params.setdefault("month", MONTH)
    return client.get(reverse("compliance:report_download", args=[kind, fmt]), params)


def _body(response) -> bytes:
    """The downloaded file (interval-data CSV is streamed)."""
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("kind", sorted(REPORTS))
@pytest.mark.chain
def test_every_report_downloads_for_an_auditor_in_every_format_and_verifies(
    world, auditor_client, kind, chain
):
    # The audit log is written now (not in June): report the current month for it.
    month = timezone.now().strftime("%Y-%m") if kind == "audit_log" else MONTH
    page = auditor_client.get(reverse("compliance:report", args=[kind]), {"month": month})
    assert page.status_code == 200
    shown_hash = page.context["doc"].content_hash
    assert shown_hash in page.content.decode()
    links = re.findall(r'id="download-csv" href="[^"?]+\?([^"]+)"', page.content.decode())
    params = dict(QueryDict(links[0].replace("&amp;", "&")).items())
    for fmt, magic in (("csv", b"# EnergySphere"), ("xlsx", b"PK"), ("pdf", b"%PDF")):
        before = AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).count()
        response = _download(auditor_client, kind, fmt, **params)
        assert response.status_code == 200
        raw = _body(response)
        assert raw.startswith(magic)
        assert response["X-Content-SHA256"] == shown_hash
        # the first format queues the content hash; the others carry the same hash
        before_anchoring = "NOT_YET_ANCHORED" if fmt == "csv" else "VERIFIED"
        assert report_verify(raw).verdict == before_anchoring
        chain_outbox_sweep(wait_seconds=5)  # the outbox worker anchors the content hash
        result = report_verify(raw, against_db=True)
        assert result.verdict == "VERIFIED", result.as_dict()
        assert result.computed_hash == shown_hash == result.db_hash
        log = AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).order_by("-id").first()
        assert AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).count() == before + 1
        assert (log.target_id, log.details["format"]) == (kind, fmt)
        assert log.details["content_sha256"] == shown_hash
        assert log.details["anchor_intent"] == result.anchor.intent_id


def test_members_get_403_on_every_report(world, client):
    client.force_login(world.consumer.user)
    assert client.get(reverse("compliance:reports")).status_code == 403
    assert client.get(reverse("incentives:registry")).status_code == 403
    for kind in REPORTS:
        assert client.get(reverse("compliance:report", args=[kind])).status_code == 403
        for fmt in ("csv", "xlsx", "pdf"):
            assert _download(client, kind, fmt).status_code == 403
    assert not AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).exists()


def _pdf_total(text: str, label: str) -> str:
    match = re.search(re.escape(label) + r"\s+(-?[\d.]+)", text)
    assert match, f"{label!r} not in the PDF text"
    return match.group(1)


def test_pdf_text_totals_equal_database_totals(world, auditor_client):
    # Certificate registry: issued Wh = validated export Wh of the month; claimed from the DB.
    text = pdf_text(_download(auditor_client, "certificate_registry", "pdf").content)
    export_wh = current_readings(meter=world.pv).aggregate(s=Sum("export_wh"))["s"]
    claimed = sum(c.wh for c in Certificate.objects.filter(status="claimed"))
    assert int(_pdf_total(text, "Issued (Wh)")) == export_wh
    assert int(_pdf_total(text, "Claimed (Wh)")) == claimed > 0

    # Interval data: import/export sums straight from the readings table.
    text = pdf_text(_download(auditor_client, "interval_data", "pdf").content)
    sums = current_readings().aggregate(i=Sum("import_wh"), e=Sum("export_wh"))
    assert int(_pdf_total(text, "Import (Wh)")) == sums["i"]
    assert int(_pdf_total(text, "Export (Wh)")) == sums["e"]

    # Carbon: location-based = consumption × 380 g/kWh, computed here independently.
    text = pdf_text(_download(auditor_client, "carbon", "pdf").content)
    consumption = sums["i"]
    assert int(_pdf_total(text, "Consumption (Wh)")) == consumption
    location = (Decimal(consumption) * 380 / 1_000_000).quantize(Decimal("0.001"))
    assert Decimal(_pdf_total(text, "Location-based (kg CO2e)")) == location
    # Market-based: claimed certificates (solar, 0 g) cover their Wh, the rest at 520 g/kWh.
    claimed_wh = sum(c.wh for c in Certificate.objects.filter(status="claimed"))
    market = (Decimal(consumption - claimed_wh) * 520 / 1_000_000).quantize(Decimal("0.001"))
    assert Decimal(_pdf_total(text, "Market-based (kg CO2e)")) == market
    assert int(_pdf_total(text, "Covered by claimed certificates (Wh)")) == claimed_wh

    # Data quality, settlement reconciliation and audit log against direct counts and sums.
    text = pdf_text(_download(auditor_client, "data_quality", "pdf").content)
    assert int(_pdf_total(text, "Present intervals")) == reading_versions().count()
    text = pdf_text(_download(auditor_client, "settlement_reconciliation", "pdf").content)
    traded = Trade.objects.aggregate(s=Sum("wh_delivered"))["s"]
    assert int(_pdf_total(text, "Traded energy (Wh)")) == traded == 400
    entries = AuditLog.objects.count()
    month = timezone.now().strftime("%Y-%m")
    text = pdf_text(_download(auditor_client, "audit_log", "pdf", month=month).content)
    assert int(_pdf_total(text, "Entries")) == entries


def test_data_quality_report_counts_edited_estimated_and_missing(world, auditor_client):
    body = _download(auditor_client, "data_quality", "csv").content.decode()
    rows = [line.split(",") for line in body.split(DATA_MARKER + "\n", 1)[1].splitlines()[2:]]
    by_meter = {r[1]: r for r in rows}
    producer_house, consumer_house = (by_meter[m.serial] for m in world.houses)
    # June has 2880 quarter-hours; one day of data is present.
    assert producer_house[3:6] == ["2880", "96", "0"] and producer_house[7] == "1"
    assert consumer_house[3:6] == ["2880", "94", "1"] and consumer_house[10] == "2786"
    assert consumer_house[11] == "96.74"


@pytest.mark.chain
def test_tampering_with_the_file_or_the_database_is_detected(
    world, auditor_client, tmp_path, chain
):
    raw = _body(_download(auditor_client, "interval_data", "csv"))
    chain_outbox_sweep(wait_seconds=5)
    head, data = raw.split((DATA_MARKER + "\n").encode(), 1)
    assert sha256_hex(data) in head.decode()  # the data section hashes to the declared hash
    forged = raw.replace(b",120,0,", b",1,0,", 1)
    assert report_verify(forged).verdict == "TAMPERED"
    path = tmp_path / "report.csv"
    path.write_bytes(raw)
    call_command("verify_report", str(path), "--against-db")  # exits 0: verified
    reading_tamper(meter=world.houses[0], interval_start=DAY, import_wh=999)
    result = report_verify(raw, against_db=True)
    assert result.verdict == "TAMPERED"
    assert "database no longer" in " ".join(result.problems)
    with pytest.raises(SystemExit):
        call_command("verify_report", str(path), "--against-db")


def test_a_period_without_data_is_a_clear_error(world, auditor_client):
    page = auditor_client.get(reverse("compliance:report", args=["carbon"]), {"month": "2020-01"})
    assert page.status_code == 400
    assert "No data for the carbon report" in page.content.decode()
    response = _download(auditor_client, "certificate_registry", "pdf", month="2020-01")
    assert response.status_code == 400
    assert b"No data for the certificate registry report" in response.content
    assert not AuditLog.objects.filter(event=AuditEvent.REPORT_EXPORTED).exists()


def test_carbon_report_lists_the_certificates_used(world, auditor_client):
    body = _download(auditor_client, "carbon", "csv").content.decode()
    data = body.split(DATA_MARKER + "\n", 1)[1]
    section = data.split("[certificates_used]\n", 1)[1].splitlines()
    used = {int(line.split(",")[2]) for line in section[1:]}
    claimed = set(Certificate.objects.filter(status="claimed").values_list("pk", flat=True))
    assert used == claimed and used
    anchors = [
        json.loads(x.split(": ", 1)[1]) for x in body.splitlines() if x.startswith("# anchor:")
    ]
    assert any(a["type"] == "certificate_claim_tx" for a in anchors)
    assert timedelta(0) < (DAY + timedelta(days=1)) - DAY


@pytest.mark.chain
def test_a_changed_on_chain_reference_is_detected(world, auditor_client, chain):
    raw = _download(auditor_client, "settlement_reconciliation", "xlsx").content
    chain_outbox_sweep(wait_seconds=5)
    assert report_verify(raw).verdict == "VERIFIED"
    world.run.trades_root = "0x" + "00" * 32
    world.run.save(update_fields=["trades_root"])
    result = report_verify(raw)
    assert result.verdict == "TAMPERED"
    assert "trades root differs" in " ".join(result.problems)
