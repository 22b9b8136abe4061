"""The market's hot paths cost a fixed number of queries, whatever the number of orders: order
generation cancels the previous automatic orders in one UPDATE and clearing moves every order
to its outcome in one bulk UPDATE (the status changes go through the transition methods)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.market import services
from apps.market.models import Order
from apps.market.tests.factories import TariffFactory, day_start
from apps.market.tests.test_orders import _member_with
from apps.meters.services import BackfillRow, readings_backfill

pytestmark = pytest.mark.django_db

# As before the status changes went through the transition methods (measured on both); order
# generation reads the members' sites in one prefetch since a member may hold several (+1).
QUERIES_GENERATE = 14
QUERIES_CLEAR = 19


def _generate_queries(members: int) -> int:
    t = day_start() + timedelta(hours=12)
    meters = [_member_with("household")[1] for _ in range(members)]
    readings_backfill(rows=[BackfillRow(m.pk, t - timedelta(days=1), 250, 0) for m in meters])
    assert services.orders_generate(interval_start=t, now=t - timedelta(minutes=30)) == members
    with CaptureQueriesContext(connection) as queries:
        assert services.orders_generate(interval_start=t, now=t - timedelta(minutes=20)) == members
    assert Order.objects.filter(status=Order.Status.CANCELLED).count() == members
    return len(queries)


def _clear_queries(pairs: int) -> int:
    t = day_start() + timedelta(hours=12)
    for i in range(pairs):
        seller, buyer = _member_with("pv")[0], _member_with("household")[0]
        before = t - timedelta(hours=1)
        services.order_place(member=seller, actor=None, interval_start=t, side="offer",
                             wh=100 + i, limit_price="0.10", now=before)  # fmt: skip
        services.order_place(member=buyer, actor=None, interval_start=t, side="bid",
                             wh=100, limit_price="0.30", now=before)  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        services.interval_clear(interval_start=t, now=t + timedelta(minutes=1))
    assert not Order.objects.filter(interval_start=t, status=Order.Status.OPEN).exists()
    return len(queries)


def test_order_generation_queries_do_not_grow_with_orders():
    TariffFactory()
    assert _generate_queries(2) == QUERIES_GENERATE


def test_order_generation_queries_for_more_members():
    TariffFactory()
    assert _generate_queries(5) == QUERIES_GENERATE


def test_clearing_queries_do_not_grow_with_orders():
    TariffFactory()
    assert _clear_queries(2) == QUERIES_CLEAR


def test_clearing_queries_for_more_orders():
    TariffFactory()
    assert _clear_queries(5) == QUERIES_CLEAR
