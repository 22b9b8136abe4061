"""Onboarding meters from a file in the admin (preview, confirm, all-or-nothing) and exporting the
meter list, as staff and auditors see them."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.tests.factories import AuditorUserFactory, MemberFactory, StaffUserFactory
from apps.audit.models import AuditLog
from apps.meters.models import Meter
from apps.meters.tests.factories import MeterFactory, new_device_key
from tests.fixtures.core import login_with_mfa

IMPORT_URL = reverse("admin:meters_meter_import")
PROCESS_URL = reverse("admin:meters_meter_process_import")
EXPORT_URL = reverse("admin:meters_meter_export")
HEADER = ["serial", "membership_number", "asset_kind", "direction", "capacity_w", "active_from",
          "interval_seconds", "multiplier", "public_key"]  # fmt: skip


def _csv(rows: list[list[str]]) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(HEADER)
    writer.writerows(rows)
    upload = io.BytesIO(text.getvalue().encode())
    upload.name = "meters.csv"
    return upload


def _rows(count: int, member) -> list[list[str]]:
    return [
        [f"IMP-{n:04d}", member.membership_number, "pv", "export", "8000",
         "2026-01-01T00:00:00+00:00", "900", "1", new_device_key()[1]]
        for n in range(count)
    ]  # fmt: skip


def _staff_client() -> Client:
    client = Client()
    login_with_mfa(client, StaffUserFactory())
    return client


def _preview(client: Client, upload) -> str:
    response = client.post(IMPORT_URL, {"import_file": upload, "format": "0"})
    assert response.status_code == 200
    return response.content.decode()


def _confirm_fields(page: str) -> dict[str, str]:
    form = page[page.index(PROCESS_URL) :]
    return dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', form[: form.index("</form>")]))


@pytest.mark.django_db
def test_staff_preview_then_confirm_imports_100_meters_through_the_service():
    member = MemberFactory()
    client = _staff_client()
    page = _preview(client, _csv(_rows(100, member)))
    assert "IMP-0099" in page and "failed to validate" not in page and "Line number" not in page
    assert Meter.objects.filter(serial__startswith="IMP-").count() == 0  # the preview keeps nothing
    assert not AuditLog.objects.filter(event="meter.registered").exists()

    response = client.post(PROCESS_URL, _confirm_fields(page))
    assert response.status_code == 302
    meters = Meter.objects.filter(serial__startswith="IMP-")
    assert meters.count() == 100
    assert all(m.address.startswith("0x") and m.member_id == member.pk for m in meters)
    assert AuditLog.objects.filter(event="meter.registered").count() == 100


@pytest.mark.django_db
def test_one_bad_row_imports_nothing_and_names_the_row_and_the_problem():
    member = MemberFactory()
    rows = _rows(10, member)
    rows[6][4] = "lots"  # data row 7: capacity not a number
    rows[3][1] = "NO-SUCH-MEMBER"  # data row 4
    client = _staff_client()
    page = _preview(client, _csv(rows))
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))
    assert "Some rows failed to validate" in text
    assert "7 1 capacity_w 'lots' is not a whole number." in text
    assert "4 1 member No member with membership number NO-SUCH-MEMBER." in text
    assert PROCESS_URL not in page  # no confirm button
    assert Meter.objects.filter(serial__startswith="IMP-").count() == 0


@pytest.mark.django_db
def test_a_row_that_fails_at_confirmation_rolls_back_the_whole_file():
    member = MemberFactory()
    rows = _rows(5, member)
    client = _staff_client()
    page = _preview(client, _csv(rows))
    MeterFactory(serial="IMP-0003")  # registered by someone else between preview and confirm
    response = client.post(PROCESS_URL, _confirm_fields(page), follow=True)
    text = response.content.decode()
    assert "Nothing was imported" in text and "IMP-0003 is already registered" in text
    assert Meter.objects.filter(serial__startswith="IMP-").count() == 1
    assert not AuditLog.objects.filter(event="meter.registered").exists()


@pytest.mark.django_db
def test_a_bad_device_key_or_kind_is_a_row_error():
    member = MemberFactory()
    rows = _rows(3, member)
    rows[0][8] = "04deadbeef"
    rows[1][2] = "windmill"
    page = _preview(_staff_client(), _csv(rows))
    assert "Not a secp256k1 public key." in page and "Unknown asset kind" in page
    assert Meter.objects.filter(serial__startswith="IMP-").count() == 0


@pytest.mark.django_db
def test_auditors_may_not_import():
    client = Client()
    login_with_mfa(client, AuditorUserFactory())
    member = MemberFactory()
    assert client.get(IMPORT_URL).status_code == 403
    upload = {"import_file": _csv(_rows(1, member)), "format": "0"}
    assert client.post(IMPORT_URL, upload).status_code == 403
    assert client.post(PROCESS_URL, {"format": "0", "import_file_name": "x"}).status_code == 403
    page = client.get(reverse("admin:meters_meter_changelist")).content.decode()
    assert IMPORT_URL not in page and EXPORT_URL in page
    assert not Meter.objects.exists()


def _export(client: Client, fmt: str) -> bytes:
    page = client.get(EXPORT_URL).content.decode()
    boxes = re.findall(r'name="(meterresource_\w+|modelresource_\w+|\w+resource_\w+)"', page)
    data = {"format": fmt, "resource": "0", **dict.fromkeys(boxes, "on")}
    response = client.post(EXPORT_URL, data)
    assert response.status_code == 200, response.content[:500]
    return response.content


@pytest.mark.django_db
def test_auditor_exports_the_meter_list_to_xlsx_formula_escaped_and_logged():
    MeterFactory(serial="EXP-1", firmware_version='=HYPERLINK("http://evil.test","x")')
    MeterFactory(serial="EXP-2", firmware_version="1.2.3")
    client = Client()
    login_with_mfa(client, AuditorUserFactory())
    content = _export(client, "1")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    header = rows[0]
    assert "serial" in [str(h).lower() for h in header]
    assert "public_key" not in [str(h).lower() for h in header]  # only the list's columns
    cells = [str(v) for row in rows[1:] for v in row]
    assert '\'=HYPERLINK("http://evil.test","x")' in cells and "1.2.3" in cells
    log = AuditLog.objects.get(event="admin_list.exported")
    assert log.target_type == "meters.meter" and log.details["rows"] == 2


@pytest.mark.django_db
def test_staff_export_to_csv_keeps_the_list_filters():
    MeterFactory(serial="CSV-PV", asset_kind=Meter.AssetKind.PV, firmware_version="@SUM(A1)")
    MeterFactory(serial="CSV-HH", asset_kind=Meter.AssetKind.HOUSEHOLD)
    client = _staff_client()
    page = client.get(EXPORT_URL + "?asset_kind__exact=pv").content.decode()
    boxes = re.findall(r'name="(\w+resource_\w+)"', page)
    response = client.post(
        EXPORT_URL + "?asset_kind__exact=pv",
        {"format": "0", "resource": "0", **dict.fromkeys(boxes, "on")},
    )
    text = response.content.decode("utf-8-sig")
    assert "CSV-PV" in text and "CSV-HH" not in text and "'@SUM(A1)" in text


@pytest.mark.django_db
def test_a_meter_page_charts_its_recent_readings_and_a_member_page_links_its_records():
    from datetime import UTC, datetime, timedelta

    from apps.demo.hooks.cockpit import reading_message
    from apps.meters.services import device_messages_deliver

    meter = MeterFactory()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    messages = [
        reading_message(serial=meter.serial, key=meter.test_key,
                        start=start + timedelta(minutes=15 * k), import_wh=100 + k, export_wh=0)
        for k in range(4)
    ]  # fmt: skip
    assert device_messages_deliver(messages=messages)["accepted"] == 4
    client = Client()
    login_with_mfa(client, AuditorUserFactory())
    page = client.get(reverse("admin:meters_meter_change", args=[meter.pk])).content.decode()
    chart = re.search(r'<svg class="meter-readings-chart".*?</svg>', page, re.S)
    assert chart and chart.group(0).count("<polyline") == 2 and "max 103 Wh" in page

    member_page = client.get(reverse("admin:accounts_member_change", args=[meter.member_id]))
    found = re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', member_page.content.decode())
    links = {label: html.unescape(url) for url, label in found}
    assert {"Meters", "Statements", "Invoices", "Site (connection point)"} <= set(links)
    meters = client.get(links["Meters"])
    assert meters.status_code == 200 and meters.context["cl"].result_count == 1
    for url in links.values():
        response = client.get(url)
        assert response.status_code == 200 and "?e=1" not in response.get("Location", ""), url


@pytest.mark.django_db
def test_a_crafted_confirmation_cannot_name_a_file_outside_the_pending_imports(tmp_path):
    import tempfile
    from pathlib import Path

    victim = Path(tempfile.gettempdir()) / f"cockpit-victim-{uuid.uuid4().hex[:8]}.csv"
    victim.write_text(",".join(HEADER) + "\nEVIL-1,,pv,export,1,2026-01-01T00:00:00+00:00,900,1,\n")
    try:
        client = _staff_client()
        response = client.post(PROCESS_URL, {"import_file_name": victim.name, "format": "0",
                                             "original_file_name": "x.csv", "resource": "0"},
                               follow=True)  # fmt: skip
        assert "this upload has expired or was already imported" in response.content.decode()
        assert not Meter.objects.filter(serial="EVIL-1").exists()
        assert victim.exists()  # not read, not removed
    finally:
        victim.unlink(missing_ok=True)


@pytest.mark.django_db
def test_an_export_longer_than_the_cap_is_refused_in_words_and_a_narrower_one_goes_through(
    settings,
):
    settings.ADMIN_EXPORT_MAX_ROWS = 2
    for n in range(2):
        MeterFactory(serial=f"CAP-PV-{n}", asset_kind=Meter.AssetKind.PV)
    MeterFactory(serial="CAP-HH", asset_kind=Meter.AssetKind.HOUSEHOLD)
    client = _staff_client()
    boxes = re.findall(r'name="(\w+resource_\w+)"', client.get(EXPORT_URL).content.decode())
    data = {"format": "1", "resource": "0", **dict.fromkeys(boxes, "on")}
    refused = client.post(EXPORT_URL, data, follow=True)
    assert refused.redirect_chain[-1][0] == reverse("admin:meters_meter_changelist")
    text = html.unescape(refused.content.decode())
    assert "Nothing was exported: the list has 3 rows, more than the 2 an export may hold" in text
    assert not AuditLog.objects.filter(event="admin_list.exported").exists()
    narrowed = client.post(EXPORT_URL + "?asset_kind__exact=pv", data)
    assert narrowed.status_code == 200 and narrowed["Content-Type"].startswith("application/vnd")
    rows = list(openpyxl.load_workbook(io.BytesIO(narrowed.content)).active.iter_rows())
    assert len(rows) == 1 + 2
