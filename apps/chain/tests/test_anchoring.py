"""Acceptance 2: anchor a batch, verify a reading, tamper with PostgreSQL, get TAMPERED."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db.models import F

from apps.chain import merkle
from apps.chain.anchoring import meter_anchor_recent, meter_interval_anchor, reading_verify
from apps.chain.models import AnchoredReading, ChainIntent, MeterAnchor
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_intent_submit
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory, reading_tamper

pytestmark = pytest.mark.chain

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _meters_with_readings(n: int, start: datetime = T0) -> list:
    meters = [MeterFactory() for _ in range(n)]
    readings_backfill(
        rows=[
            BackfillRow(
                meter_id=m.pk,
                interval_start=start,
                import_wh=100 + i,
                export_wh=i % 3,
                private_key=m.test_key,
            )
            for i, m in enumerate(meters)
        ]
    )
    return meters


def _register(meter) -> None:
    from apps.chain.client import deployed_address

    oracle = deployed_address("MeterOracle").lower()
    chain_intent_submit(
        intent="meter_register",
        payload={"serial": meter.serial, "device_address": meter.address},
        idempotency_key=f"meter_register:{oracle}:{meter.serial}:{meter.address.lower()}",
    )


def _verify_cmd(serial: str, start: datetime) -> tuple[int, dict]:
    from io import StringIO

    out = StringIO()
    code = 0
    try:
        call_command("verify_reading", meter=serial, interval=start.isoformat(), stdout=out)
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue())


def test_anchor_verify_then_tamper_in_postgres(chain):
    meters = _meters_with_readings(5)
    _register(meters[0])  # registered before: not registered twice
    anchor = meter_interval_anchor(interval_start=T0)
    # the anchoring run registered the other device keys in MeterOracle
    assert ChainIntent.objects.filter(intent="meter_register").count() == 5
    assert anchor.leaf_count == 5 and anchor.version == 1
    chain_outbox_sweep()
    anchor.intent.refresh_from_db()
    assert anchor.intent.status == ChainIntent.Status.CONFIRMED, anchor.intent.error

    code, out = _verify_cmd(meters[2].serial, T0)
    assert code == 0
    assert out["verdict"] == "OK"
    assert out["stored"]["import_wh"] == 102
    assert out["anchored_root"] == out["onchain_root"] == anchor.root
    assert out["tx_hash"] == anchor.intent.tx_hash
    assert out["signature_valid_onchain"] is True and out["included_onchain"] is True
    leaf = bytes.fromhex(out["leaf"][2:])
    proof = [bytes.fromhex(p[2:]) for p in out["proof"]]
    assert merkle.verify(leaf, proof, bytes.fromhex(anchor.root[2:]))

    reading_tamper(meter=meters[2], interval_start=T0, import_wh=F("import_wh") + 500)
    code, out = _verify_cmd(meters[2].serial, T0)
    assert code == 1
    assert out["verdict"] == "TAMPERED"
    assert out["stored"]["import_wh"] == 602
    assert out["leaf"] != out["anchored_leaf"]
    assert out["included_onchain"] is False
    # the other readings of the batch still verify
    assert _verify_cmd(meters[0].serial, T0)[1]["verdict"] == "OK"


def test_a_reading_of_an_unanchored_interval_is_not_anchored(chain):
    meters = _meters_with_readings(1)
    code, out = _verify_cmd(meters[0].serial, T0)
    assert code == 2 and out["verdict"] == "NOT_ANCHORED"
    # anchored but the transaction is not on chain yet: still NOT_ANCHORED
    meter_interval_anchor(interval_start=T0)
    assert reading_verify(serial=meters[0].serial, interval_start=T0).verdict == "NOT_ANCHORED"


def test_anchoring_is_idempotent_and_late_data_makes_a_new_version(chain):
    meters = _meters_with_readings(3)
    first = meter_interval_anchor(interval_start=T0)
    assert meter_interval_anchor(interval_start=T0) is None
    late = MeterFactory()
    readings_backfill(
        rows=[BackfillRow(meter_id=late.pk, interval_start=T0, import_wh=7, export_wh=0,
                          private_key=late.test_key)]
    )  # fmt: skip
    second = meter_interval_anchor(interval_start=T0)
    assert second.version == 2 and second.leaf_count == 4
    chain_outbox_sweep()
    assert set(ChainIntent.objects.values_list("status", flat=True)) == {"confirmed"}
    assert reading_verify(serial=late.serial, interval_start=T0).verdict == "OK"
    assert reading_verify(serial=meters[0].serial, interval_start=T0).anchor_version == 2
    assert first.root != second.root


def test_periodic_job_anchors_recent_closed_intervals_only(chain):
    now = T0 + timedelta(minutes=17)  # closed 2 min ago: still inside the 5-minute grace
    _meters_with_readings(2, start=T0)
    assert meter_anchor_recent(now=now) == []
    made = meter_anchor_recent(now=now + timedelta(minutes=5))
    assert len(made) == 1
    assert MeterAnchor.objects.get(pk=made[0]).interval_start == T0
    assert AnchoredReading.objects.filter(anchor_id=made[0]).count() == 2


def test_an_exchanged_meters_new_key_is_queued_for_meteroracle_with_its_first_anchor(chain):
    from apps.meters.services import meter_exchange
    from apps.meters.tests.factories import new_device_key

    (old,) = _meters_with_readings(1, start=T0 - timedelta(minutes=15))
    private, public_hex, address = new_device_key()
    exchange = meter_exchange(
        old_meter=old, new_serial=f"{old.serial}-N", new_public_key=public_hex,
        at=T0 + timedelta(minutes=5), old_final_register_wh=140, new_initial_register_wh=0,
    )  # fmt: skip
    new = exchange.new_meter
    readings_backfill(rows=[BackfillRow(meter_id=new.pk, interval_start=T0, import_wh=60,
                                        export_wh=0, private_key=private)])  # fmt: skip
    anchor = meter_interval_anchor(interval_start=T0)
    # the new device's reading is anchored, the old meter's unsigned exchange reading is not
    assert anchor.leaf_count == 1
    registered = ChainIntent.objects.filter(intent="meter_register", payload__serial=new.serial)
    assert [i.payload["device_address"].lower() for i in registered] == [address.lower()]
