"""A meter moved to a new occupant: the newcomer never sees the previous occupant's readings —
not on the dashboard, the meters page, the exports or the data export — and is settled only from
the move-in; the previous occupant keeps seeing (and being settled for) exactly their own days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.accounts.tests.factories import MemberFactory
from apps.audit.models import AuditLog
from apps.meters.exports import interval_rows, readings_csv
from apps.meters.selectors import (
    interval_readings_iter,
    member_dashboard_data,
    member_hourly_import,
    member_interval_energy,
    member_meters,
    member_reading_history,
    member_recent_readings,
)
from apps.meters.services import BackfillRow, meter_assign, readings_backfill
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 30, 0, tzinfo=UTC)
MOVE = START + timedelta(days=1)
NOW = START + timedelta(days=2)
Q = timedelta(minutes=15)


def _two_days(meter):
    readings_backfill(
        rows=[
            BackfillRow(
                meter_id=meter.pk,
                interval_start=START + i * Q,
                import_wh=111 if START + i * Q < MOVE else 222,
                export_wh=0,
            )
            for i in range(int((NOW - START) / Q))
        ]
    )


def test_the_new_occupant_sees_and_is_settled_only_from_the_move_in():
    before, after = MemberFactory(), MemberFactory()
    meter = MeterFactory(member=before)
    _two_days(meter)

    meter_assign(meter=meter, member_id=after.pk, since=MOVE, actor="test")

    history = member_reading_history(member_id=after.pk)
    assert history and min(r.interval_start for r in history) == MOVE
    assert {r.import_wh for r in history} == {222}
    assert all(row[2] >= MOVE for row in interval_rows(member=after, start=START, end=NOW))
    assert ",111," not in readings_csv(member=after, start=START, end=NOW)
    assert all(r[1] >= MOVE for r in member_recent_readings(member=after, now=NOW, hours=48))
    dashboard = member_dashboard_data(member=after, now=NOW)
    assert dashboard["totals"]["week_import_wh"] == 96 * 222
    energy = member_interval_energy(member_ids=[after.pk], start=START, end=NOW)
    assert min(t for _, t in energy) == MOVE
    hourly = member_hourly_import(start=START, end=NOW, member_ids=[after.pk])[after.pk]
    assert min(hourly) == MOVE
    # The previous occupant keeps exactly their own days, everywhere.
    kept = member_reading_history(member_id=before.pk)
    assert len(kept) == 96 and max(r.interval_start for r in kept) == MOVE - Q
    assert {r.import_wh for r in kept} == {111}
    assert all(row[2] < MOVE for row in interval_rows(member=before, start=START, end=NOW))
    assert ",222," not in readings_csv(member=before, start=START, end=NOW)
    assert all(r[1] < MOVE for r in member_recent_readings(member=before, now=NOW, hours=48))
    assert member_dashboard_data(member=before, now=NOW)["totals"]["week_import_wh"] == 96 * 111
    left = member_interval_energy(member_ids=[before.pk, after.pk], start=START, end=NOW)
    assert {t for (m, t) in left if m == before.pk} == {START + i * Q for i in range(96)}
    assert sum(e.import_wh for e in left.values()) == 96 * 111 + 96 * 222  # the meter's total
    both = member_hourly_import(start=START, end=NOW)
    assert sum(both[before.pk].values()) == 96 * 111 and max(both[before.pk]) < MOVE
    assert [m.pk for m in member_meters(member=before)] == [meter.pk]
    # Reports name the occupant of each interval; per member, only their own intervals.
    numbers = {(r.interval_start < MOVE, r.membership_number)
               for r in interval_readings_iter(start=START, end=NOW)}  # fmt: skip
    assert numbers == {(True, before.membership_number), (False, after.membership_number)}
    mine = list(interval_readings_iter(start=START, end=NOW, member_id=before.pk))
    assert len(mine) == 96 and {r.membership_number for r in mine} == {before.membership_number}
    log = AuditLog.objects.get(event="meter.assigned", target_id=str(meter.pk))
    assert log.details["from_member"] == before.pk and log.details["to_member"] == after.pk


def test_a_first_owner_sees_the_whole_history():
    member = MemberFactory()
    meter = MeterFactory(member=member)
    _two_days(meter)
    assert len(member_reading_history(member_id=member.pk)) == 192
