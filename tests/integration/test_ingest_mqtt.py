"""Acceptance 1: signed readings through the real Mosquitto and PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest

from apps.meters.models import Conflict, Quarantine, RawBatch, RawMessage, Reading
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.mqtt import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.django_db(transaction=True)]

# Ten days ago at midnight UTC: every interval of the tests has ended (none is "future").
T0 = (int(time.time()) // 86400 - 10) * 86400
Q = 900


def _count(**kw) -> int:
    return Reading.objects.filter(**kw).count()


def test_signed_readings_duplicates_conflicts_and_bad_input(bridge_factory, publisher_factory):
    meter = MeterFactory()
    other = MeterFactory()
    bridge_factory()
    pub = publisher_factory()
    good = [pub.reading(meter, T0 + i * Q, 100 + i, reg_i=sum(100 + k for k in range(i + 1)))
            for i in range(5)]  # fmt: skip
    for doc in good:
        pub.publish(meter.serial, doc)
    pub.publish(meter.serial, good[0])  # the same message twice
    conflicting = pub.reading(meter, T0 + Q, 555, reg_i=100 + 555)
    pub.publish(meter.serial, conflicting)
    # bad input mixed in with a good gateway batch
    pub.publish(meter.serial, None, raw=b"{not json")
    pub.publish(meter.serial, {**good[2], "import_wh": "lots"})
    pub.publish(meter.serial, {**good[3], "sig": None})
    pub.publish(meter.serial, {**good[3], "import_wh": 999})  # signature no longer matches
    pub.publish("NOPE", {**good[3], "serial": "UNKNOWN-1"})
    pub.publish(meter.serial, None, raw=b"x" * (300 * 1024))
    gateway = {"v": 1, "readings": [pub.reading(other, T0, 42), {"serial": other.serial}]}
    pub.publish(other.serial, gateway)
    assert pub.wait_published()
    assert wait_for(lambda: Quarantine.objects.count() >= 7 and _count(meter=other) == 1)
    assert wait_for(lambda: Conflict.objects.count() == 1)
    assert _count(meter=meter) == 5  # 5 good, the duplicate is no second row
    row = Reading.objects.get(meter=meter, interval_start=datetime.fromtimestamp(T0 + Q, UTC))
    assert (row.import_wh, row.quality, row.version) == (101, 0, 1)
    conflict = Conflict.objects.get()
    assert (conflict.import_wh, conflict.existing_version) == (555, 1)  # both kept
    reasons = sorted(Quarantine.objects.values_list("reason", flat=True))
    assert reasons == sorted(["malformed", "wrong_type", "missing_signature", "bad_signature",
                              "unknown_meter", "oversized", "missing_signature"])  # fmt: skip
    # staff see who did sign it: the value was changed after signing, so another key recovers
    assert Quarantine.objects.get(reason="bad_signature").detail.startswith("signed by 0x")
    assert RawMessage.objects.count() == 14  # every message kept as received


def test_bridge_killed_mid_stream_loses_no_reading(bridge_factory, publisher_factory):
    meter = MeterFactory()
    n = 300
    # Unique per run: a fixed id would resume a stale session left on the shared broker.
    client_id, group = f"kill-{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}"
    bridge = bridge_factory(client_id=client_id, group=group, batch_ms=20)
    pub = publisher_factory()
    for i in range(n):
        pub.publish(meter.serial, pub.reading(meter, T0 + i * Q, 10 + i % 5, reg_i=0))
        if i == n // 3:
            wait_for(lambda: _count(meter=meter) > 0, timeout=10)
            bridge.kill()  # SIGKILL mid-stream: no chance to flush anything
    assert pub.wait_published()
    assert _count(meter=meter) < n
    bridge_factory(
        client_id=client_id, group=group, batch_ms=20
    )  # same session: broker kept the rest
    assert wait_for(lambda: _count(meter=meter) == n, timeout=40), (
        _count(meter=meter),
        RawMessage.objects.count(),
        meter.serial,
        list(Quarantine.objects.values_list("reason", "detail", "batch_id")[:3]),
        list(RawBatch.objects.values_list("id", "bridge", "received_at", "accepted", "rejected")),
    )
    assert Reading.objects.filter(meter=meter, version__gt=1).count() == 0


def test_restarted_bridge_hands_over_the_batches_it_stored_but_had_not(
    bridge_factory, publisher_factory
):
    """Killed between the raw commit (messages acked) and the hand-over to ingest, a bridge left
    a pending batch: started again, it processes its own pending batches before anything else,
    instead of leaving them to the sweeper. Another bridge's pending batch is not its business."""
    from apps.meters.readings.pipeline import raw_batch_store

    meter = MeterFactory()
    pub = publisher_factory()
    mine = f"crashed-{uuid.uuid4().hex[:8]}"
    topic = f"{pub.prefix}/meters/{meter.serial}/readings"
    docs = [pub.reading(meter, T0 + i * Q, 20, reg_i=20 * (i + 1)) for i in range(3)]
    own = raw_batch_store(messages=[(topic, json.dumps(d).encode()) for d in docs], bridge=mine)
    other = raw_batch_store(
        messages=[(topic, json.dumps(pub.reading(meter, T0 + 9 * Q, 5, reg_i=0)).encode())],
        bridge="some-other-bridge",
    )
    bridge_factory(client_id=mine)
    assert wait_for(lambda: _count(meter=meter) == 3, timeout=30), _count(meter=meter)
    assert RawBatch.objects.get(pk=own).status == RawBatch.Status.PROCESSED
    assert RawBatch.objects.get(pk=other).status == RawBatch.Status.PENDING


@pytest.mark.slow
def test_broker_restarted_mid_stream_loses_no_reading(mosquitto, bridge_factory, publisher_factory):
    meter = MeterFactory()
    n = 300
    bridge_factory(client_id="survivor", broker=mosquitto.url, batch_ms=20)
    pub = publisher_factory(mosquitto.url)
    for i in range(n):
        if i == n // 2:
            assert pub.wait_published()
            mosquitto.restart()
        pub.publish(meter.serial, pub.reading(meter, T0 + i * Q, 10 + i % 5, reg_i=0))
    assert pub.wait_published(timeout=40)
    assert wait_for(lambda: _count(meter=meter) == n, timeout=40), _count(meter=meter)


def test_two_bridges_process_each_reading_exactly_once(bridge_factory, publisher_factory):
    meters = MeterFactory.create_batch(4)
    run = uuid.uuid4().hex[:8]
    bridge_factory(client_id=f"twin-a-{run}", group=f"twins-{run}", batch_ms=20)
    bridge_factory(client_id=f"twin-b-{run}", group=f"twins-{run}", batch_ms=20)
    pub = publisher_factory()
    n = 100
    for i in range(n):
        for meter in meters:
            pub.publish(meter.serial, pub.reading(meter, T0 + i * Q, 7, reg_i=0))
    assert pub.wait_published()
    assert wait_for(lambda: _count() == n * len(meters), timeout=40), _count()
    assert RawMessage.objects.count() == n * len(meters)  # each delivered to one bridge only
    assert set(RawBatch.objects.values_list("bridge", flat=True)) == {
        f"twin-a-{run}",
        f"twin-b-{run}",
    }
    assert Conflict.objects.count() == 0 and Quarantine.objects.count() == 0


def test_gateway_burst_is_split_into_batches_of_bounded_bytes(bridge_factory, publisher_factory):
    """A gateway message carries many readings: the bridge bounds a batch by payload bytes, so a
    burst of gateway messages becomes several batches (one per ingest task, spread over the
    workers) instead of one batch that a single worker processes alone."""
    meters = MeterFactory.create_batch(3)
    pub = publisher_factory()
    messages = [
        {"v": 1, "readings": [pub.reading(meters[i % 3], T0 + (k * 20 + i) * Q, 50, reg_i=0)
                              for i in range(20)]}
        for k in range(6)
    ]  # fmt: skip
    cap = int(2.5 * len(json.dumps(messages[0])))  # two messages fit, a third does not
    bridge_factory(batch_ms=1000, batch_bytes=cap)
    for doc in messages:
        pub.publish("gateway-1", doc)
    assert pub.wait_published()
    assert wait_for(lambda: _count() == 120, timeout=40), _count()
    sizes = {}
    for batch_id, payload in RawMessage.objects.values_list("batch_id", "payload"):
        sizes[batch_id] = sizes.get(batch_id, 0) + len(payload)
    assert len(sizes) >= 3 and max(sizes.values()) <= cap, sizes
    assert Quarantine.objects.count() == 0


def test_device_sync_status_updates_registry_and_config_is_retained(
    bridge_factory, publisher_factory, mqtt_prefix, settings
):
    import threading

    from apps.meters import mqtt_client
    from apps.meters.models import Meter
    from apps.meters.services import meter_key_rotate
    from apps.meters.simulator import status_doc
    from apps.meters.tests.factories import new_device_key

    meter = MeterFactory()
    bridge_factory()
    pub = publisher_factory()
    status = status_doc(meter.serial, meter.test_key, now=time.time(), firmware="3.0.1")
    pub.client.publish(mqtt_client.status_topic(mqtt_prefix, meter.serial),
                       json.dumps(status), qos=1)  # fmt: skip
    assert wait_for(lambda: Meter.objects.get(pk=meter.pk).firmware_version == "3.0.1")
    assert Meter.objects.get(pk=meter.pk).last_seen is not None

    settings.MQTT_TOPIC_PREFIX = mqtt_prefix
    _, public_hex, address = new_device_key()
    meter_key_rotate(meter=Meter.objects.get(pk=meter.pk), public_key_hex=public_hex)
    # A device connecting later still gets its configuration (retained).
    got: dict = {}
    done = threading.Event()
    device = mqtt_client.make_client(f"dev-{meter.serial}")
    device.on_message = lambda c, u, m: (got.update(json.loads(m.payload)), done.set())
    device.on_connect = lambda c, *a: c.subscribe(
        mqtt_client.config_topic(mqtt_prefix, meter.serial), qos=1
    )
    mqtt_client.connect_client(device, mqtt_client.broker_from_url(settings.IOT_BROKER_URL))
    device.loop_start()
    try:
        assert done.wait(10)
    finally:
        device.loop_stop()
        device.disconnect()
        pub.client.publish(mqtt_client.config_topic(mqtt_prefix, meter.serial), b"", retain=True)
    assert got["config_version"] == 2 and got["serial"] == meter.serial
    assert Meter.objects.get(pk=meter.pk).address == address


def test_simulator_publishes_signed_demo_readings_with_faults(bridge_factory, mqtt_prefix):
    from django.core.management import call_command

    from apps.demo.keys import demo_device_identity
    from apps.meters.models import Meter

    meters = []
    for n in range(3):
        serial = f"SIM-{n:03d}"
        public_hex, address = demo_device_identity(serial)
        meters.append(MeterFactory(serial=serial, key=False))
        Meter.objects.filter(pk=meters[-1].pk).update(public_key=public_hex, address=address)
    bridge_factory()
    call_command("simulate_meters", meters=3, intervals=1, speed=1000, prefix=mqtt_prefix,
                 duplicates=1.0, bad_signature=0.0)  # fmt: skip
    assert wait_for(lambda: _count() == 3 and RawMessage.objects.count() == 6), (
        _count(),
        RawMessage.objects.count(),
    )
    assert Quarantine.objects.count() == 0  # duplicates are no-ops, not rejects
    assert set(Reading.objects.values_list("quality", flat=True)) <= {0, 10}
    assert RawBatch.objects.filter(duplicates__gt=0).exists()
