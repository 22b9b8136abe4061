"""Two workers clearing the same interval at once: one clearing, trades written once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from apps.market import services
from apps.market.models import ClearingResult, Order, Trade
from apps.market.tests.factories import (
    ConnectionPointFactory,
    MemberFactory,
    TariffFactory,
    day_start,
)


@pytest.mark.django_db(transaction=True)
def test_concurrent_clearing_of_one_interval_writes_once():
    TariffFactory()
    t = day_start() + timedelta(hours=12)
    before = t - timedelta(hours=1)
    for i in range(6):
        member = MemberFactory()
        ConnectionPointFactory(member=member)
        services.order_place(member=member, actor=None, interval_start=t,
                             side="offer" if i % 2 else "bid", wh=300 + 50 * i,
                             limit_price="0.10" if i % 2 else "0.30", now=before)  # fmt: skip
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(services.interval_clear(interval_start=t, now=t).pk)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(set(results)) == 1
    assert ClearingResult.objects.count() == 1
    trades = Trade.objects.count()
    assert trades > 0
    matched = sum(Order.objects.values_list("matched_wh", flat=True))
    assert matched == sum(tr.wh_from_seller + tr.wh_delivered for tr in Trade.objects.all())
