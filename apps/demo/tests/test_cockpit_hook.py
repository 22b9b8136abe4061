"""The staff home's demo work items arrive through the real ingest pipeline and can be worked
off the way staff would: register the pending device, re-process its quarantine; a re-sent
interval with another value is an open conflict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.demo.hooks.cockpit import (
    PENDING_SERIAL,
    pending_device_identity,
    pending_device_messages,
    reading_message,
)
from apps.meters.models import Conflict, Meter, Quarantine
from apps.meters.services import device_messages_deliver, meter_register, quarantine_reprocess
from apps.meters.tests.factories import MeterFactory

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


@pytest.mark.django_db
def test_the_unregistered_device_waits_in_quarantine_until_registered_and_reprocessed():
    result = device_messages_deliver(messages=pending_device_messages(now=NOW))
    assert result["rejected"] == 4 and result["accepted"] == 0
    rows = Quarantine.objects.filter(serial=PENDING_SERIAL, status=Quarantine.Status.OPEN)
    assert rows.count() == 4 and {r.reason for r in rows} == {"unknown_meter"}
    meter_register(
        serial=PENDING_SERIAL, member_id=None, asset_kind=Meter.AssetKind.PV,
        direction=Meter.Direction.EXPORT, capacity_w=8000,
        active_from=NOW - timedelta(days=1), public_key_hex=pending_device_identity()[0],
    )  # fmt: skip
    counts = quarantine_reprocess(quarantine_ids=list(rows.values_list("pk", flat=True)))
    assert counts["reprocessed"] == 4 and counts["rejected_again"] == 0


@pytest.mark.django_db
def test_a_resent_interval_with_another_value_is_an_open_conflict():
    meter = MeterFactory()
    start = NOW.replace(minute=0) - timedelta(hours=3)
    first = reading_message(serial=meter.serial, key=meter.test_key, start=start,
                            import_wh=100, export_wh=0)  # fmt: skip
    again = reading_message(serial=meter.serial, key=meter.test_key, start=start,
                            import_wh=140, export_wh=0)  # fmt: skip
    assert device_messages_deliver(messages=[first])["accepted"] == 1
    assert device_messages_deliver(messages=[again])["conflicts"] == 1
    assert Conflict.objects.get(meter=meter).status == Conflict.Status.OPEN
