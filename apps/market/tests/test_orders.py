"""Automatic orders from standing preferences and the forecast position."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from apps.grid.models import Forecast
from apps.market import services
from apps.market.models import Order
from apps.market.tests.factories import (
    ConnectionPointFactory,
    MemberFactory,
    MeterFactory,
    TariffFactory,
    day_start,
)
from apps.meters.services import BackfillRow, readings_backfill

pytestmark = pytest.mark.django_db


def _member_with(kind: str, **pref):
    member = MemberFactory()
    ConnectionPointFactory(member=member)
    meter = MeterFactory(member=member, asset_kind=kind)
    services.preference_update(
        member=member,
        actor=None,
        max_buy_price="0.25",
        min_sell_price="0.10",
        now=day_start(),
        **pref,
    )
    return member, meter


def test_orders_follow_grid_forecasts_else_yesterday_and_respect_manual_orders():
    TariffFactory()
    t = day_start() + timedelta(hours=12)
    consumer, load_meter = _member_with("household")
    producer, pv_meter = _member_with("pv", battery_reserve_percent=25)
    fallback, fb_meter = _member_with("household")
    manual, manual_meter = _member_with("household")
    # Grid day-ahead forecasts for two meters, issued for the whole day.
    values = [0] * 96
    values[48] = 420
    Forecast.objects.create(series_key=f"meter:{load_meter.serial}:load", kind="load",
                            method="test", start=day_start(), values_wh=values)  # fmt: skip
    pv = [0] * 96
    pv[48] = 800
    Forecast.objects.create(series_key=f"meter:{pv_meter.serial}:pv", kind="pv",
                            method="test", start=day_start(), values_wh=pv)  # fmt: skip
    # No forecast for the others: yesterday's metered interval (seasonal naive).
    readings_backfill(
        rows=[
            BackfillRow(fb_meter.pk, t - timedelta(days=1), 250, 0),
            BackfillRow(manual_meter.pk, t - timedelta(days=1), 300, 0),
        ]
    )
    services.order_place(member=manual, actor=manual.user, interval_start=t, side="bid",
                         wh=999, limit_price="0.3", now=t - timedelta(hours=1))  # fmt: skip
    assert services.orders_generate(interval_start=t, now=t - timedelta(minutes=30)) == 3
    orders = {o.member_id: o for o in Order.objects.filter(status="open")}
    assert (orders[consumer.pk].side, orders[consumer.pk].wh) == ("bid", 420)
    assert orders[consumer.pk].limit_price == Decimal("0.25")
    # 800 Wh surplus minus a 25 % battery reserve, offered as green energy.
    assert (orders[producer.pk].side, orders[producer.pk].wh) == ("offer", 600)
    assert orders[producer.pk].green
    assert (orders[fallback.pk].side, orders[fallback.pk].wh) == ("bid", 250)
    assert (orders[manual.pk].origin, orders[manual.pk].wh) == ("manual", 999)
    # Re-running replaces the automatic orders instead of duplicating them.
    assert services.orders_generate(interval_start=t, now=t - timedelta(minutes=20)) == 3
    assert Order.objects.filter(status="open").count() == 4
    # After gate closure nothing is generated.
    assert services.orders_generate(interval_start=t, now=t - timedelta(minutes=2)) == 0
