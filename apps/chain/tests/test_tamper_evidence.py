"""Issue 16, acceptance 4 (readings): tamper evidence that survives re-anchoring.

A stored reading changed in place by SQL (no new version, no correction) is never anchored: the
anchoring run leaves it out and raises a staff alert (ChainAlert + audit log), and
`verify_reading` answers TAMPERED before and after that run, online and offline. Legitimate
changes (late arrivals, corrections with a reason and version + 1) still make a new anchor
version that verifies OK. Real PostgreSQL and anvil.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import F

from apps.audit.models import AuditLog
from apps.chain.anchoring import meter_interval_anchor, reading_verify
from apps.chain.models import ChainAlert, ChainIntent, MeterAnchor
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_alerts_acknowledge
from apps.meters.services import BackfillRow, meter_key_rotate, readings_backfill
from apps.meters.signing import SignedFields, sign_reading
from apps.meters.tests.factories import (
    MeterFactory,
    current_readings,
    new_device_key,
    reading_correct,
    reading_tamper,
)

pytestmark = pytest.mark.chain

T0 = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


def _meters_with_readings(n: int) -> list:
    meters = [MeterFactory() for _ in range(n)]
    readings_backfill(
        rows=[
            BackfillRow(
                meter_id=m.pk,
                interval_start=T0,
                import_wh=200 + i,
                export_wh=0,
                private_key=m.test_key,
            )
            for i, m in enumerate(meters)
        ]  # fmt: skip
    )
    return meters


def _anchor_and_mine() -> MeterAnchor | None:
    anchor = meter_interval_anchor(interval_start=T0)
    chain_outbox_sweep()
    if anchor is not None:
        anchor.intent.refresh_from_db()
        assert anchor.intent.status == ChainIntent.Status.CONFIRMED, anchor.intent.error
    return anchor


def _verify_cmd(serial: str, *extra: str) -> tuple[int, dict]:
    out = StringIO()
    code = 0
    try:
        call_command("verify_reading", "--meter", serial, "--interval", T0.isoformat(), *extra,
                     stdout=out)  # fmt: skip
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue())


def _late_meter() -> None:
    late = MeterFactory()
    readings_backfill(
        rows=[BackfillRow(meter_id=late.pk, interval_start=T0, import_wh=9, export_wh=0,
                          private_key=late.test_key)]
    )  # fmt: skip


def test_reading_changed_in_place_is_not_reanchored_and_stays_tampered(chain):
    meters = _meters_with_readings(3)
    first = _anchor_and_mine()
    victim = meters[1]
    assert _verify_cmd(victim.serial)[1]["verdict"] == "OK"

    # someone with database access raises the stored import by 500 Wh, in place
    assert reading_tamper(meter=victim, interval_start=T0, import_wh=F("import_wh") + 500) == 1

    # before the next anchoring run: TAMPERED, online and offline (device signature)
    for extra in ((), ("--offline",)):
        code, out = _verify_cmd(victim.serial, *extra)
        assert code == 1 and out["verdict"] == "TAMPERED", out
        assert out["stored"]["import_wh"] == 701
        assert any("device signature does not match" in r for r in out["reasons"]), out
    assert ChainAlert.objects.filter(key__isnull=False).count() == 0

    # the next run anchors nothing (no new reading version), alerts staff once
    assert meter_interval_anchor(interval_start=T0) is None
    assert meter_interval_anchor(interval_start=T0) is None
    assert MeterAnchor.objects.filter(interval_start=T0).count() == 1
    alert = ChainAlert.objects.get(key__isnull=False)
    assert victim.serial in alert.message and "not anchored" in alert.message
    assert alert.acknowledged_at is None and alert.event_id is None
    log = AuditLog.objects.get(event="meter_reading.excluded")
    assert log.details["meter"] == victim.serial and log.details["alert"] == alert.pk

    # a late reading makes version 2; the tampered reading is left out of it
    _late_meter()
    second = _anchor_and_mine()
    assert second.version == 2 and second.leaf_count == 3  # 2 untouched + the late one
    assert ChainAlert.objects.filter(key__isnull=False).count() == 1  # same finding, once

    # after the run: still TAMPERED (against anchor v1, the last one holding it), on chain too
    code, out = _verify_cmd(victim.serial)
    assert code == 1 and out["verdict"] == "TAMPERED"
    assert out["anchor_version"] == first.version == 1
    assert out["signature_valid_onchain"] is False and out["included_onchain"] is False
    # the untouched readings verify against version 2
    code, out = _verify_cmd(meters[0].serial)
    assert code == 0 and out["verdict"] == "OK" and out["anchor_version"] == 2


def test_re_signed_substitution_of_the_same_version_is_tampered(chain):
    """A validly signed message of the same meter and interval (e.g. the losing side of a
    conflict) swapped in place for the stored one: the signature checks out, but the same
    reading version was anchored with another leaf."""
    (meter,) = _meters_with_readings(1)
    _anchor_and_mine()
    stored = current_readings(meter=meter, interval_start=T0).get()
    fields = SignedFields(
        meter.serial,
        stored.seq,
        int(T0.timestamp()),
        900,
        999,
        0,
        stored.register_import_wh,
        stored.register_export_wh,
        stored.status,
    )
    reading_tamper(meter=meter, interval_start=T0, import_wh=999,
                   signature=sign_reading(meter.test_key, fields))  # fmt: skip
    assert reading_verify(serial=meter.serial, interval_start=T0, check_chain=False).reasons == [
        "the stored reading differs from version 1 as anchored in anchor version 1",
        "the stored reading differs from the anchored one",
    ]
    assert meter_interval_anchor(interval_start=T0) is None
    assert "changed in place" in ChainAlert.objects.get(key__isnull=False).message
    assert reading_verify(serial=meter.serial, interval_start=T0).verdict == "TAMPERED"


def test_a_correction_with_a_new_version_is_anchored_and_verifies(chain):
    meters = _meters_with_readings(2)
    _anchor_and_mine()
    version = reading_correct(meter=meters[0], interval_start=T0, import_wh=250,
                              reason="meter exchange: corrected by the DSO")  # fmt: skip
    assert version == 2
    second = _anchor_and_mine()
    assert second.version == 2 and second.leaf_count == 2
    code, out = _verify_cmd(meters[0].serial)
    assert code == 0 and out["verdict"] == "OK", out
    assert out["stored"]["version"] == 2 and out["stored"]["import_wh"] == 250
    assert out["signature_valid_onchain"] is True
    assert not ChainAlert.objects.filter(key__isnull=False).exists()


def test_a_reading_signed_before_a_key_rotation_still_verifies_offline(chain):
    (meter,) = _meters_with_readings(1)
    _anchor_and_mine()
    meter_key_rotate(meter=meter, public_key_hex=new_device_key()[1])
    out = reading_verify(serial=meter.serial, interval_start=T0, check_chain=False)
    assert out.verdict == "OK", out.reasons


def test_an_unanchored_tampered_reading_is_tampered_and_never_anchored(chain):
    (meter,) = _meters_with_readings(1)
    reading_tamper(meter=meter, interval_start=T0, export_wh=F("export_wh") + 1)
    out = reading_verify(serial=meter.serial, interval_start=T0)
    assert out.verdict == "TAMPERED" and out.anchor_version is None
    assert meter_interval_anchor(interval_start=T0) is None
    assert not MeterAnchor.objects.exists()
    assert ChainAlert.objects.filter(key__isnull=False).count() == 1
    # staff acknowledge it like any chain alert (audited)
    alert = ChainAlert.objects.get(key__isnull=False)
    assert chain_alerts_acknowledge(alert_ids=[alert.pk]) == 1
    assert AuditLog.objects.filter(event="chain_alert.acknowledged").count() == 1


def test_staff_see_the_alert_in_the_admin_and_acknowledge_it(chain, client, admin_user):
    from tests.fixtures.core import login_with_mfa

    (meter,) = _meters_with_readings(1)
    _anchor_and_mine()
    reading_tamper(meter=meter, interval_start=T0, import_wh=F("import_wh") + 1)
    assert meter_interval_anchor(interval_start=T0) is None
    alert = ChainAlert.objects.get(key__isnull=False)
    login_with_mfa(client, admin_user)
    page = client.get("/admin/chain/chainalert/").content.decode()
    assert f"Meter {meter.serial}" in page and "not anchored" in page
    assert client.get(f"/admin/chain/chainalert/{alert.pk}/change/").status_code == 200
    response = client.post(
        "/admin/chain/chainalert/",
        {"action": "acknowledge", "_selected_action": [alert.pk]},
        follow=True,
    )
    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
