"""Reading storage: backfill (COPY), partitions, selectors (with query counts), rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from apps.meters.models import Quality, Reading
from apps.meters.readings.partitions import partition_name
from apps.meters.readings.rollups import rollups_refresh
from apps.meters.selectors import (
    interval_readings_for_anchoring,
    member_dashboard_data,
    member_interval_energy,
    meter_interval_energy,
)
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.signing import recover_address
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, tzinfo=UTC)
Q = timedelta(minutes=15)


def _rows(meter, n, start=T0, imp=100, exp=0, key=True):
    return [
        BackfillRow(
            meter_id=meter.pk,
            interval_start=start + i * Q,
            import_wh=imp + i,
            export_wh=exp,
            private_key=meter.test_key if key else None,
        )
        for i in range(n)
    ]


def test_backfill_stores_signed_rows_that_verify_and_rerun_is_harmless():
    meter = MeterFactory()
    assert readings_backfill(rows=_rows(meter, 8), source="backfill") == 8
    assert readings_backfill(rows=_rows(meter, 8), source="backfill") == 0
    readings = interval_readings_for_anchoring(interval_start=T0 + 3 * Q)
    assert len(readings) == 1
    r = readings[0]
    assert (r.import_wh, r.register_import_wh, r.seq) == (103, 100 + 101 + 102 + 103, r.seq)
    assert recover_address(r.digest, r.signature) == meter.address
    assert Reading.objects.filter(meter=meter, is_current=True).count() == 8


def test_backfill_creates_missing_partitions_for_old_data():
    meter = MeterFactory()
    old = datetime(2024, 3, 31, tzinfo=UTC)
    assert readings_backfill(rows=_rows(meter, 4, start=old, key=False), source="backfill") == 4
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partition_name("meters_reading", old)])
        assert cursor.fetchone()[0] is not None
    # Unsigned historical rows are stored but never offered for anchoring.
    assert interval_readings_for_anchoring(interval_start=old) == []


def test_backfill_of_250_meters_continues_registers_and_sequence():
    """Bulk path of the demo load (the time is measured by bench, not asserted here)."""
    owner = MeterFactory(key=False).member  # one member: password hashing per user is slow
    meters = MeterFactory.create_batch(250, key=False, member=owner)
    start = T0 - timedelta(days=2)
    rows = [
        BackfillRow(
            meter_id=m.pk, interval_start=start + i * Q, import_wh=50 + i % 7, export_wh=i % 3
        )  # fmt: skip
        for m in meters
        for i in range(2 * 96)
    ]
    assert readings_backfill(rows=rows, source="backfill") == len(rows) == 48_000
    more = [BackfillRow(meter_id=meters[0].pk, interval_start=start + 2 * 96 * Q, import_wh=7,
                        export_wh=0)]  # fmt: skip
    readings_backfill(rows=more, source="backfill")
    last = Reading.objects.get(meter=meters[0], interval_start=start + 2 * 96 * Q)
    assert last.register_import_wh == sum(50 + i % 7 for i in range(2 * 96)) + 7
    assert last.seq == int(last.interval_start.timestamp()) // 900


def test_selectors_return_current_versions_with_constant_queries(django_assert_num_queries):
    a = MeterFactory()
    b = MeterFactory(member=a.member)
    c = MeterFactory()
    for m in (a, b, c):
        readings_backfill(rows=_rows(m, 4, imp=10, exp=2, key=False), source="backfill")
    # A correction: version 2 of one interval becomes current.
    Reading.objects.filter(meter=a, interval_start=T0).update(is_current=False)
    Reading.objects.create(
        meter=a, interval_start=T0, version=2, import_wh=999, export_wh=0,
        quality=Quality.EDITED, reason="staff correction", ingested_at=T0,
    )  # fmt: skip
    with django_assert_num_queries(1):
        energy = meter_interval_energy(meter_ids=[a.pk, b.pk], start=T0, end=T0 + 4 * Q)
    assert len(energy) == 8
    assert energy[(a.pk, T0)].import_wh == 999
    assert energy[(a.pk, T0)].version == 2 and energy[(a.pk, T0)].quality == Quality.EDITED
    assert (c.pk, T0) not in energy
    with django_assert_num_queries(1):
        per_member = member_interval_energy(
            member_ids=[a.member_id, c.member_id], start=T0, end=T0 + 2 * Q
        )
    assert per_member[(a.member_id, T0)].import_wh == 999 + 10
    assert per_member[(a.member_id, T0 + Q)].export_wh == 4
    assert per_member[(c.member_id, T0)].import_wh == 10


def test_member_dashboard_data_series_latest_and_totals(django_assert_num_queries):
    meter = MeterFactory()
    other = MeterFactory()
    now = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)  # 11:07 in Berlin
    start = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    readings_backfill(rows=_rows(meter, 2 * 96 + 40, start=start, imp=1, key=False), source="x")
    readings_backfill(rows=_rows(other, 10, start=now - Q, imp=10_000, key=False), source="x")
    with django_assert_num_queries(2):  # the week's intervals (today's among them), the latest
        data = member_dashboard_data(member=meter.member, now=now)
    # Local midnight (Berlin, UTC+1) is 23:00 UTC the day before; through 10:00 UTC = 45.
    assert data["today"]["labels"][0] == "2026-11-19T23:00:00+00:00"
    assert len(data["today"]["labels"]) == 45
    assert data["latest"]["interval_start"] == "2026-11-20T10:00:00+00:00"
    assert data["totals"]["today_import_wh"] == sum(data["today"]["import_wh"])
    assert data["totals"]["week_import_wh"] > data["totals"]["today_import_wh"]
    assert 10_000 not in data["today"]["import_wh"]  # other members' meters are not included
    week = dict(zip(data["week"]["labels"], data["week"]["import_wh"], strict=True))
    # 18 Nov 10:00 through 20 Nov 10:00 UTC, whole hours; an hour of today is its four intervals
    assert all(label.endswith(":00:00+00:00") for label in week) and len(week) == 49
    assert week["2026-11-20T09:00:00+00:00"] == sum(1 + i for i in range(188, 192))
    today_hours = [v for label, v in week.items() if label >= "2026-11-19T23:00:00+00:00"]
    assert sum(today_hours) == data["totals"]["today_import_wh"]


def test_rollups_refresh_per_meter_and_transformer():
    from apps.grid.models import ConnectionPoint, Feeder, Substation, Transformer
    from apps.meters.models import GridRollup, MeterRollup

    sub = Substation.objects.create(name="S", capacity_kva=1000)
    feeder = Feeder.objects.create(substation=sub, name="F", capacity_kw=500)
    trafo = Transformer.objects.create(feeder=feeder, name="T", capacity_kva=250)
    meters = []
    for n in range(2):
        m = MeterFactory(key=False)
        m.connection_point = ConnectionPoint.objects.create(
            member=m.member, transformer=trafo, code=f"CP{n}"
        )
        m.save()
        meters.append(m)
        readings_backfill(rows=_rows(m, 8, imp=10, key=False), source="x")
    assert rollups_refresh() == 2
    hour = MeterRollup.objects.get(meter=meters[0], granularity="hour", period_start=T0)
    assert (hour.import_wh, hour.intervals) == (10 + 11 + 12 + 13, 4)
    day = MeterRollup.objects.get(meter=meters[0], granularity="day", period_start=T0)
    assert day.import_wh == sum(10 + i for i in range(8))
    trafo_hour = GridRollup.objects.get(level="transformer", node_id=trafo.pk,
                                        granularity="hour", period_start=T0)  # fmt: skip
    assert trafo_hour.import_wh == 2 * (10 + 11 + 12 + 13) and trafo_hour.meters == 2
    feeder_day = GridRollup.objects.get(level="feeder", node_id=feeder.pk,
                                        granularity="day", period_start=T0)  # fmt: skip
    assert feeder_day.import_wh == 2 * day.import_wh
    assert rollups_refresh() == 0  # nothing dirty any more


def test_rollups_of_a_month_without_partition_go_into_a_new_monthly_partition():
    """Per-meter rollups are partitioned by month: refreshing hours of a month that has no
    partition yet creates it, and the rows land in it (not in some catch-all)."""
    meter = MeterFactory(key=False)
    start = datetime(2031, 3, 31, 23, tzinfo=UTC)  # the refresh spans March and April 2031
    readings_backfill(rows=_rows(meter, 8, start=start, imp=5, key=False), source="x")
    assert rollups_refresh() == 2
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, granularity, period_start, import_wh "
            "FROM meters_meterrollup WHERE meter_id = %s ORDER BY granularity, period_start",
            [meter.pk],
        )
        rows = cursor.fetchall()
    assert rows == [
        ("meters_meterrollup_y2031m03", "day", datetime(2031, 3, 31, tzinfo=UTC), 5 + 6 + 7 + 8),
        ("meters_meterrollup_y2031m04", "day", datetime(2031, 4, 1, tzinfo=UTC), 9 + 10 + 11 + 12),
        ("meters_meterrollup_y2031m03", "hour", start, 5 + 6 + 7 + 8),
        ("meters_meterrollup_y2031m04", "hour", start + timedelta(hours=1), 9 + 10 + 11 + 12),
    ]


def test_partitions_are_created_ahead_and_idempotent():
    from apps.meters.readings.partitions import partitions_forget
    from apps.meters.tasks import partitions_create_ahead

    partitions_forget()
    partitions_create_ahead()
    far = datetime.now(tz=UTC) + timedelta(days=35)
    names = [partition_name("meters_reading", far.replace(day=1, hour=0, minute=0, second=0,
                                                           microsecond=0)),
             partition_name("meters_rawmessage", far.replace(hour=0, minute=0, second=0,
                                                             microsecond=0)),
             partition_name("meters_meterrollup", far.replace(day=1, hour=0, minute=0, second=0,
                                                              microsecond=0))]  # fmt: skip
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute("SELECT to_regclass(%s)", [name])
            assert cursor.fetchone()[0] is not None, name
    partitions_forget()
    assert partitions_create_ahead() == []  # everything exists already


def test_readings_insert_skips_keys_another_worker_wrote_meanwhile():
    """The rows go straight in with COPY; if a key was taken since the caller looked (another
    worker, concurrently), nothing is half-written: the others go in, the taken one is skipped."""
    from apps.meters.readings.partitions import partitions_ensure
    from apps.meters.readings.store import ReadingRow, readings_insert

    meter = MeterFactory()
    t0 = int(T0.timestamp())
    partitions_ensure(start=T0, end=T0 + timedelta(hours=1))

    def row(start, imp):  # a row as readings_ingest builds it
        return ReadingRow(
            meter_id=meter.pk,
            interval_start=start,
            version=1,
            interval_seconds=900,
            import_wh=imp,
            export_wh=0,
            register_import_wh=0,
            register_export_wh=0,
            status=0,
            seq=start // 900,
            signature=b"\x01" * 65,
            quality=0,
            flags=0,
            reason="",
            raw_message_id=None,
        )

    assert readings_insert([row(t0, 5)], "mqtt") == {(meter.pk, t0)}
    written = readings_insert([row(t0 + 900, 6), row(t0, 7), row(t0 + 1800, 8)], "mqtt")
    assert written == {(meter.pk, t0 + 900), (meter.pk, t0 + 1800)}
    rows = Reading.objects.filter(meter=meter).order_by("interval_start")
    assert [(r.import_wh, r.version, r.is_current) for r in rows] == [(5, 1, True), (6, 1, True),
                                                                       (8, 1, True)]  # fmt: skip
    assert all(r.ingested_at is not None and r.source == "mqtt" for r in rows)
