"""A cancelled DR event reaches the site's devices over the real Mosquitto as a command signed by
the cooperative; the device verifies it, calls the event off, and refuses it replayed."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.core.intervals import floor_interval
from apps.grid.commands_mqtt import command_topic, cooperative_command_address
from apps.grid.services import dr_event_cancel, dr_event_create, dr_event_publish
from apps.grid.services.dispatch import dr_cancellation_publish
from apps.grid.tests.factories import BatteryFactory
from apps.meters import mqtt_client
from apps.meters.device_messages import CommandVerifier
from apps.meters.simulator import SimDevice

pytestmark = [pytest.mark.mqtt, pytest.mark.django_db(transaction=True)]


def test_cancelled_event_reaches_the_device_signed_once():
    battery = BatteryFactory()
    start = floor_interval(timezone.now()) + timedelta(hours=2)
    event = dr_event_create(
        start=start,
        end=start + timedelta(hours=1),
        connection_point_ids=[battery.connection_point_id],
    )
    dr_event_publish(event_pk=event.pk)

    got: list[dict] = []
    subscribed, arrived = threading.Event(), threading.Event()
    device_client = mqtt_client.make_client(f"dev-{uuid.uuid4().hex[:8]}")
    device_client.on_connect = lambda c, *a: c.subscribe(command_topic(battery.serial), qos=1)
    device_client.on_subscribe = lambda *a: subscribed.set()
    device_client.on_message = lambda c, u, m: (got.append(json.loads(m.payload)), arrived.set())
    mqtt_client.connect_client(
        device_client, mqtt_client.broker_from_url(settings.MQTT_COMMANDS_URL)
    )
    device_client.loop_start()
    try:
        assert subscribed.wait(10)
        dr_event_cancel(event_pk=event.pk, reason="forecast overload gone")
        assert dr_cancellation_publish(event_pk=event.pk) == [battery.serial]
        assert arrived.wait(10)
    finally:
        device_client.loop_stop()
        device_client.disconnect()

    device = SimDevice(battery.serial, bytes(31) + b"\x05",
                       CommandVerifier(battery.serial, cooperative_command_address()))  # fmt: skip
    now = datetime.now(UTC)
    ack = device.answer(got[0], now)
    assert ack["status"] == "accepted" and device.cancelled_events == {event.event_id}
    assert got[0]["modification_number"] == 1 and got[0]["seq"] == 1
    assert device.answer(got[0], now)["reason"] == "replayed"
    tampered = {**got[0], "dr_event": "another-event"}
    assert device.answer(tampered, now)["reason"] == "not signed by the cooperative"
