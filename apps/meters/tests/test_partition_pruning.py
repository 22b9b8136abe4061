"""Partition pruning of the hot reading queries, read from PostgreSQL's own plans (EXPLAIN).

`meters_reading` is partitioned by month of `interval_start` (apps/meters/readings/partitions.py).
A query that names its time range must only touch the months of that range, whatever the
table's age: the member dashboard, the market's settlement energy and the member/report exports.
Each test runs the real selector, captures the SQL it sent, asks PostgreSQL for the plan of that
very statement and lists the reading partitions the plan scans.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.meters.exports import interval_rows
from apps.meters.readings.partitions import partition_name, partitions_ensure
from apps.meters.selectors import (
    interval_readings_iter,
    member_dashboard_data,
    member_interval_energy,
)
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

JAN = datetime(2026, 1, 1, tzinfo=UTC)
MONTHS = [datetime(2026, m, 1, tzinfo=UTC) for m in range(1, 7)]  # January … June 2026
DECLARE = re.compile(r"^DECLARE .*? CURSOR .*?FOR (SELECT .*)$", re.DOTALL)


def month(n: int) -> str:
    """The partition name of month n of 2026."""
    return partition_name("meters_reading", datetime(2026, n, 1, tzinfo=UTC))


@pytest.fixture
def six_months():
    """Six monthly reading partitions (January to June 2026) and a member with a meter."""
    partitions_ensure(start=MONTHS[0], end=MONTHS[-1], tables=["meters_reading"])
    return MeterFactory(member_since=JAN - timedelta(days=30))


def _relations(node: dict) -> Iterator[str]:
    if "Relation Name" in node:
        yield node["Relation Name"]
    for child in node.get("Plans", []):
        yield from _relations(child)


def reading_partitions_planned(sql: str) -> set[str]:
    """The `meters_reading` partitions PostgreSQL's plan of `sql` scans."""
    found = DECLARE.match(sql)  # a server-side cursor: plan its query
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + (found.group(1) if found else sql))
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return {name for name in _relations(plan[0]["Plan"]) if name.startswith("meters_reading_")}


def partitions_per_query(call: Callable[[], object]) -> list[set[str]]:
    """Run `call`; the partitions planned for each statement it sent that reads readings."""
    with CaptureQueriesContext(connection) as captured:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    return [
        reading_partitions_planned(q["sql"])
        for q in captured.captured_queries
        if "meters_reading" in q["sql"]
    ]


def test_the_plan_reader_sees_every_partition_of_an_unbounded_query(six_months):
    """The check itself can fail: a reading query without a time range scans every partition
    (the six months and whatever months the migrations created around today)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'meters_reading'::regclass"
        )
        every = {name for (name,) in cursor.fetchall()}
    assert every >= {month(n) for n in range(1, 7)}
    sql = f"SELECT count(*) FROM meters_reading WHERE meter_id = {int(six_months.pk)}"  # noqa: S608
    assert reading_partitions_planned(sql) == every


def test_the_dashboard_reads_only_the_current_month(six_months):
    member = six_months.member
    plans = partitions_per_query(
        lambda: member_dashboard_data(member=member, now=datetime(2026, 3, 20, 12, tzinfo=UTC))
    )
    # the week's intervals (today's series is their tail), the latest reading
    assert plans == [{month(3)}, {month(3)}]


def test_the_dashboard_early_in_a_month_also_reads_the_last_days_of_the_month_before(six_months):
    member = six_months.member
    plans = partitions_per_query(
        lambda: member_dashboard_data(member=member, now=datetime(2026, 4, 3, 12, tzinfo=UTC))
    )
    # the last 7 days (today's series among them) and the latest reading: March 27 onwards
    assert plans == [{month(3), month(4)}, {month(3), month(4)}]


def test_settlement_energy_of_a_period_reads_only_its_month(six_months):
    start = datetime(2026, 5, 14, 10, tzinfo=UTC)
    plans = partitions_per_query(
        lambda: member_interval_energy(
            member_ids=[six_months.member_id], start=start, end=start + timedelta(hours=1)
        )
    )
    assert plans == [{month(5)}]


def test_settlement_energy_across_a_month_end_reads_both_months(six_months):
    start = datetime(2026, 5, 31, 23, tzinfo=UTC)
    plans = partitions_per_query(
        lambda: member_interval_energy(
            member_ids=[six_months.member_id], start=start, end=start + timedelta(hours=2)
        )
    )
    assert plans == [{month(5), month(6)}]


def test_a_member_export_of_one_month_reads_that_month_only(six_months):
    """[February 1, March 1): the exclusive upper bound keeps March out of the plan."""
    member = six_months.member
    plans = partitions_per_query(
        lambda: interval_rows(member=member, start=MONTHS[1], end=MONTHS[2])
    )
    assert plans == [{month(2)}]


def test_a_report_export_streams_only_the_months_of_its_period(six_months):
    """The compliance report's server-side cursor, for the whole cooperative and for one member."""
    whole = partitions_per_query(lambda: interval_readings_iter(start=MONTHS[1], end=MONTHS[3]))
    one = partitions_per_query(
        lambda: interval_readings_iter(
            start=MONTHS[1], end=MONTHS[3], member_id=six_months.member_id
        )
    )
    assert whole == [{month(2), month(3)}]
    assert one == [{month(2), month(3)}]
