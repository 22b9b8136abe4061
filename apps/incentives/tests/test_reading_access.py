"""Incentives reads meter readings only through `apps.meters.selectors`, in as few queries as
before (the counts were measured on the code that queried the reading table itself)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.incentives import energy

from .factories import MemberFactory, MeterFactory, PVMeterFactory, readings

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, tzinfo=UTC)
END = T0 + timedelta(hours=2)


def test_hourly_export_of_a_producer_is_one_query(django_assert_max_num_queries):
    pv = PVMeterFactory()
    readings(pv, T0, [100, 200, 300, 400, 50, 60, 70, 80])
    with django_assert_max_num_queries(1):  # before: 1
        hours = energy.meter_hourly_export(pv, T0, END)
    assert [h.wh for h in hours.values()] == [1000, 260]
    assert hours[T0].complete(900)
    assert [i["export_wh"] for i in hours[T0].intervals] == [100, 200, 300, 400]


def test_hourly_import_of_members_is_one_query(django_assert_max_num_queries):
    member, other = MemberFactory(), MemberFactory()
    readings(MeterFactory(member=member), T0, [10, 20, 30, 40, 5], export=False)
    readings(MeterFactory(member=other), T0, [1, 1, 1, 1], export=False)
    with django_assert_max_num_queries(1):  # before: 1
        one = energy.members_hourly_import(T0, END, [member.pk])
    with django_assert_max_num_queries(1):  # before: 1
        every = energy.members_hourly_import(T0, END)
    assert one == {member.pk: {T0: 100, T0 + timedelta(hours=1): 5}}
    assert every[other.pk] == {T0: 4}
