"""Issue 17, signed device traffic: configuration messages are signed by the cooperative's
command key with a per-meter sequence number and an expiry; a device applies only those, and
refuses unsigned, wrongly signed, replayed, expired and misdirected ones. The configuration goes
through the real Mosquitto (retained, as a device receives it)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import coincurve
import pytest

from apps.meters import mqtt_client
from apps.meters.command_key import cooperative_command_address
from apps.meters.device_messages import CONFIG, CommandVerifier, ConfigVerifier, sign_message
from apps.meters.models import Meter
from apps.meters.services import meter_configs_publish
from apps.meters.simulator import SimDevice
from apps.meters.tests.factories import MeterFactory

pytestmark = [pytest.mark.mqtt, pytest.mark.django_db]


def _retained_config(serial: str, prefix: str) -> dict:
    """The retained configuration message a device gets when it subscribes."""
    from django.conf import settings

    got: list[bytes] = []
    done = threading.Event()
    client = mqtt_client.make_client(f"cfg-{serial}")
    client.on_message = lambda c, u, m: (got.append(m.payload), done.set())
    client.on_connect = lambda c, *a: c.subscribe(mqtt_client.config_topic(prefix, serial), qos=1)
    mqtt_client.connect_client(client, mqtt_client.broker_from_url(settings.MQTT_COMMANDS_URL))
    client.loop_start()
    try:
        assert done.wait(10), "no retained configuration"
    finally:
        client.loop_stop()
        client.disconnect()
    return json.loads(got[0])


@pytest.fixture
def published(settings, mqtt_prefix):
    settings.MQTT_TOPIC_PREFIX = mqtt_prefix
    meter, other = MeterFactory(firmware_target="2.0.0"), MeterFactory()
    meter_configs_publish(meters=[meter, other])
    yield meter, other, _retained_config(meter.serial, mqtt_prefix)
    cleaner = mqtt_client.make_client(f"cfg-clear-{meter.serial}")  # no retained leftovers
    mqtt_client.connect_client(cleaner, mqtt_client.broker_from_url(settings.MQTT_COMMANDS_URL))
    cleaner.loop_start()
    infos = [
        cleaner.publish(mqtt_client.config_topic(mqtt_prefix, m.serial), b"", qos=1, retain=True)
        for m in (meter, other)
    ]
    for info in infos:
        info.wait_for_publish(10)
    cleaner.loop_stop()
    cleaner.disconnect()


def _device(serial: str) -> SimDevice:
    address = cooperative_command_address()
    return SimDevice(serial, b"\x01" * 32, CommandVerifier(serial, address),
                     ConfigVerifier(serial, address))  # fmt: skip


def test_a_signed_configuration_is_applied_and_each_one_has_the_next_sequence_number(
    published, mqtt_prefix, settings
):
    meter, other, doc = published
    now = datetime.now(UTC)
    device = _device(meter.serial)
    assert device.configure(doc, now, topic_serial=meter.serial) is None
    assert device.config["firmware_target"] == "2.0.0" and device.config["seq"] == 1
    ttl = timedelta(seconds=settings.METER_CONFIG_TTL_S)
    assert now + ttl - timedelta(minutes=1) < datetime.fromisoformat(doc["expires_at"]) <= now + ttl
    assert Meter.objects.get(pk=meter.pk).config_seq == 1  # persisted
    meter_configs_publish(meters=[Meter.objects.get(pk=meter.pk)])
    newer = _retained_config(meter.serial, mqtt_prefix)
    assert newer["seq"] == 2 and Meter.objects.get(pk=meter.pk).config_seq == 2
    assert device.configure(newer, now, topic_serial=meter.serial) is None
    assert Meter.objects.get(pk=other.pk).config_seq == 1  # per meter


def test_unsigned_forged_replayed_expired_and_misdirected_configurations_are_refused(
    published, settings
):
    meter, other, doc = published
    now = datetime.now(UTC)
    device = _device(meter.serial)
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    assert device.configure(unsigned, now, topic_serial=meter.serial) == "unsigned"
    assert device.configure(None, now, topic_serial=meter.serial) == "unsigned"
    tampered = {**doc, "firmware_target": "6.6.6"}
    assert device.configure(tampered, now, topic_serial=meter.serial) == (
        "not signed by the cooperative"
    )
    forged = sign_message(CONFIG, unsigned, coincurve.PrivateKey().secret)
    assert device.configure(forged, now, topic_serial=meter.serial) == (
        "not signed by the cooperative"
    )
    # The signed configuration of another meter, replayed on this meter's topic.
    other_doc = {**unsigned, "serial": other.serial}
    key_signed = sign_message(CONFIG, other_doc, _command_key())
    assert device.configure(key_signed, now, topic_serial=meter.serial) == "for another device"
    assert device.configure(doc, now, topic_serial=other.serial) == "for another device"
    later = now + timedelta(seconds=settings.METER_CONFIG_TTL_S + 60)
    assert device.configure(doc, later, topic_serial=meter.serial) == "expired"
    assert device.config == {}  # nothing applied so far
    assert device.configure(doc, now, topic_serial=meter.serial) is None
    assert device.configure(doc, now, topic_serial=meter.serial) == "replayed"  # same seq
    older = sign_message(CONFIG, {**unsigned, "seq": 0, "firmware_target": "0.1"}, _command_key())
    assert device.configure(older, now, topic_serial=meter.serial) == "replayed"
    assert device.config == doc


def _command_key() -> bytes:
    from apps.meters.command_key import cooperative_command_key

    return cooperative_command_key()
