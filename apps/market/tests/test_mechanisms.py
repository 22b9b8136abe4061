"""Every pricing mechanism settles budget-balanced against the grid, from metered actuals."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from apps.market import pricing, services
from apps.market.models import MarketSettings, SettlementLine, SettlementRun
from apps.market.tests.factories import build_small_coop, day_start, profile_wh, set_preferences
from apps.meters.services import BackfillRow, readings_backfill

pytestmark = pytest.mark.django_db

HOURS = range(40, 52)  # 10:00–13:00 UTC: PV surplus and demand at once


def _run_day(mechanism: str) -> tuple[SettlementRun, object]:
    coop = build_small_coop(9, tight_transformer_kva=50)
    MarketSettings.objects.filter(pk=1).update(mechanism=mechanism)
    set_preferences(coop)
    day = day_start()
    rows = []
    for offset, factor in ((-1, 1.0), (0, 1.1)):
        for i, member in enumerate(coop.members):
            for meter in coop.meters[member.pk]:
                for k in HOURS:
                    t = day + timedelta(days=offset, minutes=15 * k)
                    wh = profile_wh(i, meter.asset_kind, k, factor)
                    pv = meter.asset_kind == "pv"
                    rows.append(BackfillRow(meter.pk, t, 0 if pv else wh, wh if pv else 0))
    readings_backfill(rows=rows)
    for k in HOURS:
        t = day + timedelta(minutes=15 * k)
        services.orders_generate(interval_start=t, now=t - timedelta(minutes=30))
        services.interval_clear(interval_start=t, now=t)
    assert services.settlement_runs_process(now=day + timedelta(days=1, hours=1))
    return SettlementRun.objects.get(), coop


# pay-as-clear is settled and checked the same way in test_full_day.
@pytest.mark.parametrize("mechanism", ["sdr", "mmr"])
def test_budget_balance_for_every_mechanism(mechanism):
    run, coop = _run_day(mechanism)
    assert run.status == SettlementRun.Status.SETTLED and run.trade_count > 0
    # Members' payments + grid export revenue = members' receipts + grid import cost + fees.
    imbalance = (run.members_pay + run.grid_export_revenue) - (
        run.members_receive + run.grid_import_cost + run.network_fees
    )
    assert abs(imbalance) <= Decimal("0.00001")
    # Community prices: every member's whole position at Ps / Pb from the formulas.
    tariff = coop.tariff
    for k in HOURS:
        t = day_start() + timedelta(minutes=15 * k)
        lines = list(SettlementLine.objects.filter(run=run, interval_start=t))
        need = sum(max(x.import_wh - x.export_wh, 0) for x in lines)
        surplus = sum(max(x.export_wh - x.import_wh, 0) for x in lines)
        prices = pricing.community_prices(
            mechanism,
            supply_wh=surplus,
            demand_wh=need,
            retail=tariff.retail_price,
            feed_in=tariff.feed_in_price,
        )
        paid = SettlementLine.objects.filter(run=run, interval_start=t).aggregate(
            p=Sum("p2p_purchase"), s=Sum("p2p_sale")
        )
        assert abs(paid["p"] - prices.buyer_price * need / 1000) < Decimal("0.0001")
        assert abs(-paid["s"] - prices.seller_price * surplus / 1000) < Decimal("0.0001")
