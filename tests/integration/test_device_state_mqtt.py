"""Device state from signed MQTT status messages (through the real Mosquitto, the bridge and
PostgreSQL) feeds the next dispatch plan: a battery's state of charge, an EV charger's plug."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from django.utils import timezone

from apps.grid.models import FlexibleDevice
from apps.grid.services import dispatch_plan_create
from apps.grid.tests.factories import BatteryFactory, EVChargerFactory, TransformerFactory
from apps.meters import mqtt_client
from apps.meters.simulator import status_doc
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.mqtt import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.django_db(transaction=True)]


def _with_meter(device: FlexibleDevice):
    """The device is addressed by its meter's serial (as in the demo)."""
    meter = MeterFactory(member=device.connection_point.member)
    device.meter, device.serial = meter, meter.serial
    device.save(update_fields=["meter", "serial"])
    return meter


def _stored_energy(setpoints: list[int], efficiency: float) -> np.ndarray:
    """Energy the battery holds over its start, after each interval of the plan (Wh)."""
    w = np.asarray(setpoints, dtype=float)
    step = np.where(w > 0, w * efficiency, w / efficiency) / 4  # 15 minutes
    return np.cumsum(step)


def test_signed_status_soc_and_ev_plug_feed_the_next_plan(
    bridge_factory, publisher_factory, mqtt_prefix
):
    transformer = TransformerFactory()
    battery = BatteryFactory(
        connection_point__transformer=transformer, capacity_wh=10_000, soc_wh=5_000,
        min_soc_wh=1_000,
    )  # fmt: skip
    ev = EVChargerFactory(connection_point__transformer=transformer, available_from_hour=17)
    bat_meter, ev_meter = _with_meter(battery), _with_meter(ev)
    before = dispatch_plan_create(force=True)
    assert before.commands.filter(device=ev).exists()  # its configured evening window

    bridge_factory()
    pub = publisher_factory()

    def send(meter, **state):
        doc = status_doc(meter.serial, meter.test_key, now=time.time(), **state)
        topic = mqtt_client.status_topic(mqtt_prefix, meter.serial)
        pub.client.publish(topic, json.dumps(doc), qos=1)

    # A forged status (another key) changes nothing; the device's own signed one does.
    forged = status_doc(bat_meter.serial, ev_meter.test_key, now=time.time(), soc_pct=0)
    pub.client.publish(mqtt_client.status_topic(mqtt_prefix, bat_meter.serial),
                       json.dumps(forged), qos=1)  # fmt: skip
    send(bat_meter, soc_pct=10)  # at its minimum (1 kWh of 10)
    send(ev_meter, ev_plugged=False, ev_charging=False)
    assert wait_for(lambda: FlexibleDevice.objects.get(pk=battery.pk).soc_wh == 1_000)
    assert wait_for(lambda: FlexibleDevice.objects.get(pk=ev.pk).ev_plugged is False)
    assert FlexibleDevice.objects.get(pk=battery.pk).state_reported_at is not None

    plan = dispatch_plan_create()  # not forced: the reported state changed its inputs
    assert plan is not None
    assert not plan.commands.filter(device=ev).exists()  # no car: no charging set point
    # The plan starts from the reported 1 kWh: it never discharges below the minimum.
    setpoints = plan.commands.get(device=battery).setpoints_w
    assert _stored_energy(setpoints, battery.efficiency).min() >= -1

    # The charger had let its commands expire (left out of dispatch); its status brings it back
    # with the car plugged in.
    FlexibleDevice.objects.filter(pk=ev.pk).update(
        unresponsive_since=timezone.now(), missed_commands=2
    )
    send(ev_meter, ev_plugged=True, ev_charging=False)
    assert wait_for(lambda: FlexibleDevice.objects.get(pk=ev.pk).ev_plugged is True)
    ev.refresh_from_db()
    assert ev.unresponsive_since is None and ev.missed_commands == 0
    again = dispatch_plan_create()
    assert again is not None
    charging = again.commands.get(device=ev).setpoints_w
    assert sum(charging) / 4 >= ev.daily_energy_wh
