"""Compliance reads meter readings only through `apps.meters.selectors`, in as few queries as
before (the counts were measured on the code that queried the reading table itself)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta

import pytest

from apps.compliance.data_export import member_data_export
from apps.compliance.reports.builders import build_data_quality, build_interval_data
from apps.meters.selectors import READING_HISTORY_COLUMNS

from .conftest import DAY

pytestmark = pytest.mark.django_db
END = DAY + timedelta(days=1)


def test_member_export_reads_the_readings_in_as_few_queries(world, django_assert_max_num_queries):
    # 15: 11 before (2 of them on the readings) + membership, sites, notifications and vote
    # participations
    with django_assert_max_num_queries(15):
        body, _name = member_data_export(member=world.consumer)
    intervals = zipfile.ZipFile(io.BytesIO(body)).read("intervals.csv").decode()
    rows = list(csv.reader(io.StringIO(intervals)))
    assert rows[0] == list(READING_HISTORY_COLUMNS)  # the header: apps/meters/tests
    assert len(rows) == 1 + 94  # the consumer's house misses two intervals
    assert rows[1][0] == world.houses[1].serial and rows[1][7] == "True"


def test_data_quality_report_reads_one_query_per_month(world, django_assert_max_num_queries):
    month = DAY.replace(day=1)
    with django_assert_max_num_queries(3):  # before: 3 (meters, readings of June, anchors)
        doc = build_data_quality(start=month, end=month.replace(month=7))
    assert dict(doc.totals)["Present intervals"] == 3 * 96 - 2


def test_interval_data_report_streams_one_query(world, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):  # before: 2 (readings, anchors)
        doc = build_interval_data(start=DAY, end=END)
    with django_assert_max_num_queries(2):  # before: 2
        mine = build_interval_data(start=DAY, end=END, member_id=world.consumer.pk)
    assert dict(doc.totals)["Intervals"] == 3 * 96 - 2
    assert dict(mine.totals)["Intervals"] == 94
    first = next(doc.tables[0].iter_rows())
    assert first[1] in {world.producer.membership_number, world.consumer.membership_number}
    assert first[-1] in {"yes", "no"}
