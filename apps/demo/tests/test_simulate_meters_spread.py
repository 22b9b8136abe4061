"""`simulate_meters --spread`: the meters report one after the other over the interval, from
their last stored reading on, and every reading is ingested (issue 22: a live ingest rate)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from apps.demo.keys import demo_device_identity
from apps.meters.models import Meter
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory, current_readings
from tests.fixtures.mqtt import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.django_db(transaction=True)]


def test_spread_reports_reach_ingest_and_last_seen_starts_from_the_history(
    bridge_factory, mqtt_prefix
):
    now = int(time.time())
    boundary = now - now % 900
    # The history ends three intervals back: the next one to report ended 15 minutes ago, so
    # every meter's spread moment (at most 10 of 15 minutes after the end) has passed.
    last = datetime.fromtimestamp(boundary - 3 * 900, tz=UTC)
    meters = []
    for n in range(3):
        serial = f"SPREAD-{n:03d}-{boundary}"
        public_hex, address = demo_device_identity(serial)
        meter = MeterFactory(serial=serial, key=False)
        Meter.objects.filter(pk=meter.pk).update(public_key=public_hex, address=address)
        meters.append(meter)
    readings_backfill(
        rows=[BackfillRow(meter_id=m.pk, interval_start=last, import_wh=10, export_wh=0)
              for m in meters]
    )  # fmt: skip
    seen = {m.serial: m.last_seen for m in Meter.objects.filter(pk__in=[m.pk for m in meters])}
    assert set(seen.values()) == {last + timedelta(minutes=15)}  # from the backfilled history

    bridge_factory()
    call_command("simulate_meters", meters=3, intervals=1, speed=1000, prefix=mqtt_prefix,
                 spread=True)  # fmt: skip
    expected = datetime.fromtimestamp(boundary - 2 * 900, tz=UTC)
    assert wait_for(
        lambda: current_readings(meter__in=meters, interval_start=expected).count() == 3
    )
    for meter in Meter.objects.filter(pk__in=[m.pk for m in meters]):
        assert meter.last_seen > expected  # live now
