"""One test per VEE rule, through the same ingest service the bridge uses (real PostgreSQL):
raw message stored → reading_batch_ingest → the quality code / flags / quarantine reason."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import TestCase

from apps.meters import vee
from apps.meters.models import Meter, Quarantine, Reading
from apps.meters.readings.pipeline import raw_batch_store, reading_batch_ingest
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.mqtt import Publisher

pytestmark = pytest.mark.django_db

Q = 900
T0 = (int(time.time()) // 86400 - 3) * 86400 + 12 * 3600  # noon UTC three days ago


def ingest(*docs) -> None:
    batch = raw_batch_store(
        messages=[("p/meters/x/readings", json.dumps(d).encode()) for d in docs]
    )
    with TestCase.captureOnCommitCallbacks(execute=True):  # meter state advances on commit
        reading_batch_ingest(batch_id=batch)


def reading_at(meter, start):
    return Reading.objects.get(
        meter=meter, interval_start=datetime.fromtimestamp(start, UTC), is_current=True
    )


def sign(meter, start, imp, exp=0, reg_i=None, **kw):
    return Publisher.reading(meter, start, imp, exp, reg_i=imp if reg_i is None else reg_i, **kw)


def test_valid_reading_is_quality_0():
    meter = MeterFactory()
    ingest(sign(meter, T0, 100))
    r = reading_at(meter, T0)
    assert (r.quality, r.flags, r.seq) == (0, 0, T0 // Q)


def test_spike_is_questionable():
    meter = MeterFactory()
    ingest(sign(meter, T0, 100, reg_i=1000), sign(meter, T0 + Q, 5000, reg_i=6000))
    r = reading_at(meter, T0 + Q)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.SPIKE


def test_high_against_history_is_questionable():
    meter = MeterFactory()
    Meter.objects.filter(pk=meter.pk).update(typical_wh=200)
    ingest(sign(meter, T0, 900))
    r = reading_at(meter, T0)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.HIGH


def test_zero_usage_on_a_consuming_meter_is_questionable():
    meter = MeterFactory()
    Meter.objects.filter(pk=meter.pk).update(typical_wh=200)
    ingest(sign(meter, T0, 0))
    assert reading_at(meter, T0).flags & vee.Flag.ZERO


def test_negative_value_is_quarantined():
    meter = MeterFactory()
    doc = sign(meter, T0, 10)
    ingest({**doc, "import_wh": -5})
    assert Quarantine.objects.get().reason == "negative"
    assert not Reading.objects.filter(meter=meter).exists()


def test_register_rollover_is_valid_and_flagged():
    meter = MeterFactory()
    top = vee.REGISTER_ROLLOVER_AT - 50
    ingest(sign(meter, T0, 40, reg_i=top), sign(meter, T0 + Q, 100, reg_i=50))
    r = reading_at(meter, T0 + Q)
    assert r.quality == vee.VALID and r.flags & vee.Flag.REGISTER_ROLLOVER


def test_interval_sum_vs_register_mismatch_is_questionable():
    meter = MeterFactory()
    ingest(sign(meter, T0, 100, reg_i=1000), sign(meter, T0 + Q, 100, reg_i=1300))
    r = reading_at(meter, T0 + Q)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.REGISTER_MISMATCH


def test_reverse_flow_on_import_only_meter_is_questionable():
    meter = MeterFactory(direction=Meter.Direction.IMPORT)
    ingest(sign(meter, T0, 100, exp=30))
    r = reading_at(meter, T0)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.REVERSE_FLOW


def test_over_capacity_is_questionable_and_absurd_is_quarantined():
    meter = MeterFactory(capacity_w=4000)  # 1000 Wh per quarter-hour
    ingest(sign(meter, T0, 1500), sign(meter, T0 + Q, 10_000_000))
    r = reading_at(meter, T0)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.OVER_CAPACITY
    assert Quarantine.objects.get().reason == "out_of_range"


def test_outside_active_period_is_questionable():
    meter = MeterFactory(active_from=datetime.fromtimestamp(T0 + 86400, UTC))
    ingest(sign(meter, T0, 100))
    assert reading_at(meter, T0).flags & vee.Flag.OUTSIDE_ACTIVE


def test_future_timestamp_is_quarantined_and_small_drift_is_flagged():
    meter = MeterFactory()
    now = int(time.time())
    future = (now // Q + 4) * Q
    drift = (now // Q) * Q  # the current interval has not ended yet: the meter's clock is fast
    ingest(sign(meter, future, 10), sign(meter, drift, 10))
    assert "future" in Quarantine.objects.values_list("reason", flat=True)
    if drift + Q - now <= vee.CLOCK_DRIFT_TOLERANCE_S:
        assert reading_at(meter, drift).flags & vee.Flag.CLOCK_DRIFT
    else:
        assert Quarantine.objects.count() == 2  # too far ahead to be drift


def test_interval_length_mismatch_is_questionable():
    meter = MeterFactory(interval_seconds=900)
    ingest(sign(meter, T0, 100, interval=300))
    r = Reading.objects.get(meter=meter)
    assert r.quality == vee.QUESTIONABLE and r.flags & vee.Flag.INTERVAL_MISMATCH


def test_dst_days_have_92_and_100_quarter_hours_and_are_flagged():
    assert vee.intervals_in_local_day(date(2026, 3, 29), "Europe/Berlin") == 92
    assert vee.intervals_in_local_day(date(2026, 10, 25), "Europe/Berlin") == 100
    assert vee.intervals_in_local_day(date(2026, 10, 26), "Europe/Berlin") == 96
    meter = MeterFactory()
    start = int(datetime(2026, 3, 29, 10, tzinfo=UTC).timestamp())
    ingest(sign(meter, start, 100))
    r = reading_at(meter, start)
    assert r.quality == vee.VALID and r.flags & vee.Flag.DST_DAY


def test_replayed_and_reordered_seq_are_quarantined():
    meter = MeterFactory()
    ingest(sign(meter, T0, 10, seq=50))
    ingest(sign(meter, T0 + Q, 10, seq=50))  # seq reused for a newer interval
    ingest(sign(meter, T0 + 2 * Q, 10, seq=40))  # lower seq for a later interval
    assert sorted(Quarantine.objects.values_list("reason", flat=True)) == [
        "reordered_seq",
        "replayed_seq",
    ]


def test_misaligned_interval_is_quarantined():
    meter = MeterFactory()
    ingest(sign(meter, T0 + 7, 10))
    assert Quarantine.objects.get().reason == "misaligned"


def test_duplicate_and_conflicting_duplicate():
    from apps.meters.models import Conflict

    meter = MeterFactory()
    doc = sign(meter, T0, 10)
    ingest(doc)
    ingest(doc)
    ingest(sign(meter, T0, 11))
    assert Reading.objects.filter(meter=meter).count() == 1
    assert Conflict.objects.get().import_wh == 11


def test_gap_estimation_and_late_actual_replaces_estimate_as_new_version():
    from apps.meters.services import gaps_estimate

    meter = MeterFactory()
    ingest(sign(meter, T0, 100, reg_i=100), sign(meter, T0 + 3 * Q, 400, reg_i=1000))
    assert gaps_estimate(meter_ids=[meter.pk], start=datetime.fromtimestamp(T0, UTC),
                         end=datetime.fromtimestamp(T0 + 4 * Q, UTC)) == 2  # fmt: skip
    est = reading_at(meter, T0 + Q)
    assert (est.quality, est.import_wh, est.signature) == (vee.INTERPOLATED, 200, None)
    assert reading_at(meter, T0 + 2 * Q).import_wh == 300
    ingest(sign(meter, T0 + Q, 250, reg_i=350))  # the real value arrives late
    actual = reading_at(meter, T0 + Q)
    assert (actual.version, actual.quality, actual.import_wh) == (2, vee.VALID, 250)
    assert actual.reason == "actual reading replaces estimate"
    old = Reading.objects.get(meter=meter, interval_start=actual.interval_start, version=1)
    assert old.is_current is False and old.quality == vee.INTERPOLATED  # kept, not overwritten


def test_long_gap_uses_same_weekday_profile():
    meter = MeterFactory()
    week_ago = datetime.fromtimestamp(T0 - 7 * 86400, UTC)
    rows = [
        BackfillRow(meter_id=meter.pk, interval_start=week_ago + i * timedelta(seconds=Q),
                    import_wh=70 + i, export_wh=0)
        for i in range(10)
    ]  # fmt: skip
    readings_backfill(rows=rows, source="backfill")
    from apps.meters.services import gaps_estimate

    ingest(sign(meter, T0, 100, reg_i=100), sign(meter, T0 + 9 * Q, 100, reg_i=900))
    gaps_estimate(meter_ids=[meter.pk], start=datetime.fromtimestamp(T0, UTC),
                  end=datetime.fromtimestamp(T0 + 10 * Q, UTC))  # fmt: skip
    r = reading_at(meter, T0 + 4 * Q)
    assert (r.quality, r.import_wh) == (vee.ESTIMATED, 74)
