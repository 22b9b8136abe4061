"""One end-to-end test per VEE rule: a signed reading published to the real Mosquitto, stored by
the real bridge process, validated into PostgreSQL — asserting the quality code (or the
quarantine reason). One bridge serves the whole module (its own topic prefix and group)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import pytest
from django.conf import settings

from apps.meters import vee
from apps.meters.models import Conflict, Meter, Quarantine, Reading
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.mqtt import ROOT, Publisher, _database_url, wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.django_db(transaction=True)]

Q = 900
T0 = (int(time.time()) // 86400 - 3) * 86400 + 12 * 3600
PREFIX = f"{settings.MQTT_TOPIC_PREFIX}/vee-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def module_bridge(django_db_setup):
    import os

    env = {**os.environ, "DATABASE_URL": _database_url(),
           "DJANGO_SETTINGS_MODULE": "config.settings.test"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "mqtt_bridge", "--ingest", "inline",
         "--client-id", f"vee-{uuid.uuid4().hex[:8]}", "--prefix", PREFIX,
         "--group", f"vee{uuid.uuid4().hex[:6]}", "--batch-ms", "50", "--session-expiry", "60"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Until the bridge has subscribed, a published reading reaches no one. Its start takes a few
    # seconds on a quiet machine and up to a minute on a loaded one (parallel test runs).
    deadline = time.monotonic() + 120
    subscribed = False
    while not subscribed and time.monotonic() < deadline and proc.poll() is None:
        subscribed = "subscribed" in (proc.stdout.readline() or "")
    assert subscribed, "the bridge did not subscribe"
    yield proc
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def publish(module_bridge):
    pub = Publisher(settings.IOT_BROKER_URL, PREFIX)
    yield pub
    pub.close()


def sign(meter, start, imp, exp=0, reg_i=None, **kw):
    return Publisher.reading(meter, start, imp, exp, reg_i=imp if reg_i is None else reg_i, **kw)


def send(pub, meter, *docs):
    for doc in docs:
        pub.publish(meter.serial, doc)
    assert pub.wait_published()


def current(meter, start):
    found = wait_for(lambda: Reading.objects.filter(
        meter=meter, interval_start=datetime.fromtimestamp(start, UTC), is_current=True
    ).first())  # fmt: skip
    assert found is not None, "reading not stored"
    return found


def quarantined(reason):
    assert wait_for(lambda: Quarantine.objects.filter(reason=reason).exists()), reason


def test_valid(publish):
    m = MeterFactory()
    send(publish, m, sign(m, T0, 100))
    assert current(m, T0).quality == vee.VALID


def test_spike(publish):
    m = MeterFactory()
    send(publish, m, sign(m, T0, 100, reg_i=1000))
    current(m, T0)
    send(publish, m, sign(m, T0 + Q, 5000, reg_i=6000))
    r = current(m, T0 + Q)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.SPIKE


def test_high_vs_history(publish):
    m = MeterFactory()
    Meter.objects.filter(pk=m.pk).update(typical_wh=200)
    send(publish, m, sign(m, T0, 900))
    r = current(m, T0)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.HIGH


def test_zero_usage(publish):
    m = MeterFactory()
    Meter.objects.filter(pk=m.pk).update(typical_wh=200)
    send(publish, m, sign(m, T0, 0))
    r = current(m, T0)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.ZERO


def test_negative(publish):
    m = MeterFactory()
    send(publish, m, {**sign(m, T0, 10), "import_wh": -5})
    quarantined("negative")


def test_register_rollover(publish):
    m = MeterFactory()
    send(publish, m, sign(m, T0, 40, reg_i=vee.REGISTER_ROLLOVER_AT - 50))
    current(m, T0)
    send(publish, m, sign(m, T0 + Q, 100, reg_i=50))
    r = current(m, T0 + Q)
    assert r.quality == vee.VALID and r.flags & vee.Flag.REGISTER_ROLLOVER


def test_interval_sum_vs_register(publish):
    m = MeterFactory()
    send(publish, m, sign(m, T0, 100, reg_i=1000))
    current(m, T0)
    send(publish, m, sign(m, T0 + Q, 100, reg_i=1300))
    r = current(m, T0 + Q)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.REGISTER_MISMATCH


def test_reverse_flow(publish):
    m = MeterFactory(direction=Meter.Direction.IMPORT)
    send(publish, m, sign(m, T0, 100, exp=30))
    r = current(m, T0)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.REVERSE_FLOW


def test_over_capacity_and_absurd(publish):
    m = MeterFactory(capacity_w=4000)
    send(publish, m, sign(m, T0, 1500), sign(m, T0 + Q, 10_000_000))
    r = current(m, T0)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.OVER_CAPACITY
    quarantined("out_of_range")


def test_outside_active_period(publish):
    m = MeterFactory(active_from=datetime.fromtimestamp(T0 + 86400, UTC))
    send(publish, m, sign(m, T0, 100))
    r = current(m, T0)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.OUTSIDE_ACTIVE


def test_future_timestamp(publish):
    m = MeterFactory()
    now = int(time.time())
    send(publish, m, sign(m, (now // Q + 4) * Q, 10))
    quarantined("future")


def test_misaligned_clock(publish):
    m = MeterFactory()
    send(publish, m, sign(m, T0 + 37, 10))
    quarantined("misaligned")


def test_interval_length_mismatch(publish):
    m = MeterFactory(interval_seconds=900)
    send(publish, m, sign(m, T0, 100, interval=300))
    r = wait_for(lambda: Reading.objects.filter(meter=m).first())
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.INTERVAL_MISMATCH


def test_dst_day(publish):
    m = MeterFactory()
    start = int(datetime(2026, 10, 25, 10, tzinfo=UTC).timestamp())  # 100 quarter-hours
    send(publish, m, sign(m, start, 100))
    r = current(m, start)
    assert r.quality == vee.VALID and r.flags & vee.Flag.DST_DAY


def test_replayed_seq(publish):
    m = MeterFactory()
    send(publish, m, sign(m, T0, 10, seq=50))
    current(m, T0)
    assert wait_for(lambda: Meter.objects.get(pk=m.pk).last_seq == 50)
    send(publish, m, sign(m, T0 + Q, 10, seq=50))
    quarantined("replayed_seq")


def test_duplicate_and_conflict(publish):
    m = MeterFactory()
    doc = sign(m, T0, 10)
    send(publish, m, doc)
    current(m, T0)
    send(publish, m, doc, sign(m, T0, 11))
    assert wait_for(lambda: Conflict.objects.filter(meter=m).exists())
    assert Reading.objects.filter(meter=m).count() == 1
