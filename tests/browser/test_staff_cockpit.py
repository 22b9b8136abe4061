"""A staff member's morning in the admin, in a real browser: log in with TOTP, read the to-do
queue on the staff home, approve a settlement run (after its confirmation page), accept a
conflict (with a reason; the meter then shows the accepted value), fix the cause of a quarantine
(the device was never registered: import it with 99 other meters from a CSV, preview then
confirm) and re-process it, and export the meter list to XLSX.

The quarantine and the conflict are the demo's own (its cockpit hook, apps/demo/hooks/cockpit.py,
run against one demo household meter with history), made through the real ingest pipeline; the
settlement run awaiting approval is one settled trade."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import openpyxl
import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import expect

from apps.accounts.tests.factories import DEFAULT_PASSWORD, MemberFactory, StaffUserFactory
from apps.demo.hooks import cockpit as cockpit_hook
from apps.demo.hooks.cockpit import PENDING_SERIAL, pending_device_identity, reading_message
from apps.demo.keys import demo_device_identity, demo_device_key
from apps.market.models import SettlementRun
from apps.market.tests.factories import make_trade
from apps.meters.models import Conflict, Meter, Quarantine
from apps.meters.services import device_messages_deliver
from apps.meters.tests.factories import MeterFactory, new_device_key
from tests.fixtures.browser import totp_code

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _count(page, key: str) -> int:
    return int(page.locator(f"#staff-todo [data-todo={key}]").inner_text())


def _run_action(page, action: str) -> None:
    page.select_option("select[name=action]", action)
    page.click("#changelist-form button[name=index]")
    page.wait_for_load_state()


def test_a_staff_morning_from_the_to_do_queue(live_server, page, tmp_path, chain_tx):
    staff = StaffUserFactory()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    member = MemberFactory()
    run = make_trade(member, settled=True).clearing.run
    now = datetime.now(UTC) - timedelta(minutes=30)
    # A demo household meter with two hours of history, then the demo's own cockpit hook: the
    # unregistered PV device's readings (quarantined) and the household's re-sent interval (a
    # conflict), both through the real ingest pipeline.
    serial = "DEMO-HH-COCKPIT"
    public_key, address = demo_device_identity(serial)
    meter = MeterFactory(member=member, serial=serial, asset_kind=Meter.AssetKind.HOUSEHOLD,
                         key=False, public_key=public_key, address=address)  # fmt: skip
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    history = [start + timedelta(minutes=15 * k) for k in range(9)]  # start .. start + 2 h
    device_messages_deliver(messages=[
        reading_message(serial=serial, key=demo_device_key(serial), start=t, import_wh=100,
                        export_wh=0)
        for t in history
    ])  # fmt: skip
    meter.refresh_from_db()
    assert meter.last_interval_start == history[-1]
    context = SimpleNamespace(now=now, meters=[meter], created={})
    cockpit_hook.load(context)
    assert context.created == {"quarantined_pending_device": 1, "conflicts": 1}
    conflict = Conflict.objects.get(meter=meter)
    assert conflict.interval_start == start and conflict.import_wh != 100

    # Log in with the password and the TOTP code: the staff home is the admin index.
    page.goto(f"{live_server.url}/accounts/login/?next=/admin/")
    page.fill("input[name=login]", staff.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/accounts/2fa/authenticate/.*"))
    page.fill("input[name=code]", totp_code(secret))
    page.click("#mfa-submit")
    page.wait_for_url(f"{live_server.url}/admin/")
    expect(page.locator("#staff-todo")).to_be_visible()
    assert _count(page, "settlement_runs") == 1
    assert _count(page, "quarantine_unknown_meter") == 4
    assert _count(page, "conflicts") == 1
    assert page.locator("#staff-health").is_visible()

    # The settlement run awaiting approval: the link opens the filtered list; approving asks.
    page.click("#staff-todo [data-todo=settlement_runs]")
    page.wait_for_url(re.compile(r".*/admin/market/settlementrun/\?status__exact=settled"))
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.check("#result_list input.action-select")
    _run_action(page, "approve_and_anchor")
    expect(page.locator("#approve-confirmation")).to_be_visible()
    run.refresh_from_db()
    assert run.status == SettlementRun.Status.SETTLED  # nothing happened before confirming
    page.click("#confirm-approve")
    expect(page.locator("ul.messagelist")).to_contain_text("1 settlement runs queued for anchoring")
    run.refresh_from_db()
    assert run.status == SettlementRun.Status.ANCHORED and run.approved_by_id == staff.pk

    # The conflict: accepted from its change page, with a reason on the confirmation page; the
    # re-sent value becomes the meter's current reading (a new version).
    page.goto(f"{live_server.url}/admin/")
    assert _count(page, "settlement_runs") == 0
    page.click("#staff-todo [data-todo=conflicts]")
    page.click("#result_list tbody tr th a")
    expect(page.locator(".field-stored_reading")).to_contain_text("100 Wh in")
    page.click("#conflict-accept")
    expect(page.locator("#conflict-confirmation")).to_be_visible()
    page.fill("textarea[name=reason]", "Re-read on site: the re-sent value is right.")
    page.click("#confirm-decision")
    expect(page.locator("ul.messagelist")).to_contain_text("1 conflict accepted.")
    conflict.refresh_from_db()
    assert conflict.status == Conflict.Status.ACCEPTED
    page.goto(f"{live_server.url}/admin/meters/meter/{meter.pk}/change/")
    expect(page.locator(".field-recent_readings")).to_contain_text(
        f"{start:%Y-%m-%d %H:%M} · {conflict.import_wh} Wh in"
    )
    page.goto(f"{live_server.url}/admin/")
    assert _count(page, "conflicts") == 0

    # The quarantine's cause: the device was never registered. Import it with 99 other new
    # meters from a CSV: preview, then confirm.
    upload = tmp_path / "new-meters.csv"
    with upload.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["serial", "membership_number", "asset_kind", "direction", "capacity_w",
                         "active_from", "public_key"])  # fmt: skip
        since = (now - timedelta(days=1)).isoformat()
        writer.writerow([PENDING_SERIAL, member.membership_number, "pv", "export", "8000",
                         since, pending_device_identity()[0]])  # fmt: skip
        for n in range(99):
            writer.writerow([f"NEW-{n:03d}", member.membership_number, "household",
                             "bidirectional", "30000", "2026-01-01T00:00:00+00:00",
                             new_device_key()[1]])  # fmt: skip
    page.goto(f"{live_server.url}/admin/meters/meter/")
    page.click("a.import_link")
    page.set_input_files("input[name=import_file]", str(upload))
    page.select_option("select[name=format]", label="csv")
    page.click("form[enctype='multipart/form-data'] input[type=submit]")
    page.wait_for_load_state()
    expect(page.locator("input[name=confirm]")).to_be_visible()
    expect(page.locator("table.import-preview tbody tr")).to_have_count(100)
    assert not Meter.objects.filter(serial=PENDING_SERIAL).exists()  # the preview keeps nothing
    page.click("input[name=confirm]")
    page.wait_for_url(f"{live_server.url}/admin/meters/meter/")
    assert Meter.objects.filter(serial__startswith="NEW-").count() == 99
    assert Meter.objects.filter(serial=PENDING_SERIAL, member=member).exists()

    # Now re-process the quarantined readings: accepted.
    page.goto(f"{live_server.url}/admin/")
    page.click("#staff-todo [data-todo=quarantine_unknown_meter]")
    expect(page.locator("#result_list tbody tr")).to_have_count(4)
    page.check("#action-toggle")
    _run_action(page, "reprocess")
    expect(page.locator("ul.messagelist")).to_contain_text("Re-processed: 4 accepted")
    assert not Quarantine.objects.filter(status=Quarantine.Status.OPEN).exists()

    # Export the meter list to XLSX.
    page.goto(f"{live_server.url}/admin/meters/meter/")
    page.click("a.export_link")
    page.select_option("select[name=format]", label="xlsx")
    with page.expect_download() as download_info:
        page.click("form input[type=submit]")
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(Path(download.path()).read_bytes()))
    rows = list(workbook.active.iter_rows(values_only=True))
    serials = {row[1] for row in rows[1:]}
    assert len(rows) == 1 + Meter.objects.count() and PENDING_SERIAL in serials
    assert page.js_errors == []
