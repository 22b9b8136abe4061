"""The selectors other apps read readings through: current versions only, one query each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.meters.models import Quality
from apps.meters.selectors import (
    READING_HISTORY_COLUMNS,
    interval_readings_iter,
    member_reading_history,
    meter_last_interval_starts,
    meter_quality_counts,
)
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, tzinfo=UTC)
Q = timedelta(minutes=15)


def test_the_member_export_header_is_what_members_get():
    assert READING_HISTORY_COLUMNS == ("meter", "interval_start", "interval_seconds", "import_wh",
                                       "export_wh", "quality", "version", "is_current",
                                       "reason")  # fmt: skip


def test_last_interval_per_meter_is_one_query(django_assert_max_num_queries):
    """What the demo loader resumes its history from (before: 1 query in the loader itself)."""
    a, b, silent = MeterFactory(), MeterFactory(), MeterFactory()
    starts = {a: [T0, T0 + Q, T0 + 2 * Q], b: [T0]}
    readings_backfill(
        rows=[
            BackfillRow(meter_id=m.pk, interval_start=t, import_wh=1, export_wh=0)
            for m, ts in starts.items()
            for t in ts
        ]
    )
    with django_assert_max_num_queries(1):
        last = meter_last_interval_starts(meter_ids=[a.pk, b.pk, silent.pk], since=T0)
    assert last == {a.pk: T0 + 2 * Q, b.pk: T0}
    assert meter_last_interval_starts(meter_ids=[a.pk], since=T0 + 3 * Q) == {}


def test_quality_counts_stream_and_history_read_the_current_versions(
    django_assert_max_num_queries,
):
    meter = MeterFactory()
    readings_backfill(rows=[
        BackfillRow(meter_id=meter.pk, interval_start=T0, import_wh=5, export_wh=0),
        BackfillRow(meter_id=meter.pk, interval_start=T0 + Q, import_wh=6, export_wh=0,
                    quality=Quality.ESTIMATED),
        BackfillRow(meter_id=meter.pk, interval_start=T0 + 2 * Q, import_wh=7, export_wh=0,
                    quality=Quality.EDITED),
    ])  # fmt: skip
    with django_assert_max_num_queries(1):
        counts = meter_quality_counts(start=T0, end=T0 + timedelta(days=1))
    assert counts == {meter.pk: (3, 1, 1, 0)}
    with django_assert_max_num_queries(1):
        rows = list(interval_readings_iter(start=T0, end=T0 + Q * 2, chunk_size=1))
    assert [(r.serial, r.interval_start, r.import_wh, r.device_signed) for r in rows] == [
        (meter.serial, T0, 5, False), (meter.serial, T0 + Q, 6, False)]  # fmt: skip
    assert rows[0].membership_number == meter.member.membership_number
    history = member_reading_history(member_id=meter.member_id)
    assert [(h.meter, h.version, h.is_current) for h in history] == [(meter.serial, 1, True)] * 3
