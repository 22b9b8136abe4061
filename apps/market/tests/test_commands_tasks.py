"""Management commands and Celery tasks of the market (called the way operators and beat do)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.core.intervals import INTERVAL, floor_interval
from apps.market import tasks
from apps.market.models import ClearingResult, Order
from apps.market.tests.factories import (
    ConnectionPointFactory,
    MemberFactory,
    TariffFactory,
    make_trade,
)


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_market_price_prints_the_formula_prices():
    sdr = json.loads(
        _run(
            "market_price",
            "--mechanism",
            "sdr",
            "--supply-wh",
            "500",
            "--demand-wh",
            "1000",
            "--retail",
            "0.32",
            "--feed-in",
            "0.08",
        )  # fmt: skip
    )
    assert sdr == {"seller_price": 0.128, "buyer_price": 0.224}
    mmr = json.loads(
        _run(
            "market_price",
            "--mechanism",
            "mmr",
            "--supply-wh",
            "400",
            "--demand-wh",
            "1000",
            "--retail",
            "0.32",
            "--feed-in",
            "0.08",
        )  # fmt: skip
    )
    assert mmr == {"seller_price": 0.2, "buyer_price": 0.272}
    with pytest.raises(CommandError, match="above the feed-in"):
        _run("market_price", "--mechanism", "mmr", "--supply-wh", "1", "--demand-wh", "1",
             "--retail", "0.05", "--feed-in", "0.08")  # fmt: skip


@pytest.mark.django_db
def test_verify_trade_command():
    trade = make_trade(MemberFactory(), settled=True)
    report = json.loads(_run("verify_trade", "--trade", str(trade.pk)))
    assert report["in_root"] is True and report["trade_id"] == trade.pk
    assert report["root"] == trade.clearing.run.trades_root
    with pytest.raises(CommandError, match="not settled"):
        _run("verify_trade", "--trade", str(make_trade(MemberFactory()).pk))


@pytest.mark.django_db
def test_beat_tasks_generate_orders_and_clear_closed_intervals(settings):
    TariffFactory()
    member = MemberFactory()
    ConnectionPointFactory(member=member)
    from apps.market.services import order_place

    now = timezone.now()
    nxt = floor_interval(now) + INTERVAL * 2
    order_place(member=member, actor=None, interval_start=nxt, side="bid", wh=100,
                limit_price="0.2", now=now)  # fmt: skip
    assert tasks.market_orders_generate_task() == 0  # nobody has standing preferences
    cleared = tasks.market_intervals_clear_task()
    # The current interval's gate has closed: it is cleared; the order's interval is not yet.
    assert (
        floor_interval(now).isoformat() in cleared
        or floor_interval(now + timedelta(minutes=5)).isoformat() in cleared
    )
    assert not ClearingResult.objects.filter(interval_start=nxt).exists()
    assert Order.objects.get().status == Order.Status.OPEN
    assert tasks.market_intervals_clear_task() == []  # idempotent
