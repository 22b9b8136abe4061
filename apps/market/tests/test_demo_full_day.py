"""Acceptance 2 on the real demo cooperative (118 members, docs/demo.md): one delivery day from
orders to clearing, the demo meters' validated readings, settlement, one netted on-chain batch
and a statement PDF whose totals equal the database totals; then a late corrected reading of a
demo meter yields an adjustment line on the next statement. Real PostgreSQL and a real anvil node.

The demo is loaded with a fixed `now` and only the history the day needs (the day before, for
the seasonal-naive forecast, and the day itself), so the run is reproducible and short."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db.models import Q, Sum

from apps.chain.models import ChainIntent
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import member_chain_address
from apps.demo import loader as demo_loader
from apps.demo.hooks import market as market_demo
from apps.demo.keys import demo_device_key
from apps.demo.loader import demo_cooperative_load
from apps.demo.profiles import meter_energy_wh, spec_for_serial
from apps.market import services
from apps.market.models import (
    ClearingResult,
    Order,
    SettlementLine,
    SettlementRun,
    Statement,
    Trade,
)
from apps.market.services.settlement import minor, trade_leaf_for
from apps.market.tests.factories import day_start, intervals
from apps.market.tests.test_full_day import _assert_pdf_totals_equal_db, _deliver_real_reading
from apps.meters.models import Meter, Quality
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import current_readings

pytestmark = [pytest.mark.slow, pytest.mark.chain, pytest.mark.django_db]

DAY = day_start()  # 2026-06-10 00:00 UTC, a sunny Wednesday
LATE = DAY + timedelta(hours=12)  # the interval whose reading arrives late (estimated first)


def _load(*, now, history_days, signed_days):
    """The demo loader (base data is a no-op after the first call; history is topped up)."""
    report = demo_cooperative_load(
        now=now, history_days=history_days, signed_days=signed_days, run_hooks=False
    )
    assert not report.hook_errors
    return report


def _estimate(meter: Meter, interval_start) -> None:
    """The MDM's estimate for an interval the device has not delivered yet (the profile's value)."""
    spec, kind = spec_for_serial(meter.serial)
    imports, exports = meter_energy_wh(
        spec, kind, interval_start, interval_start + timedelta(minutes=15)
    )
    readings_backfill(
        rows=[
            BackfillRow(
                meter_id=meter.pk,
                interval_start=interval_start,
                import_wh=int(imports[0]),
                export_wh=int(exports[0]),
                quality=Quality.ESTIMATED,
            )
        ]
    )


def test_demo_cooperative_full_day(chain):
    # --- the demo cooperative: yesterday's history (forecast), market hook's tariff/preferences
    report = _load(now=DAY, history_days=1, signed_days=0)
    context = report.context
    assert len(context.members) == 118
    # The history ends before the delivery day, so the market hook only sets up the tariff and
    # every member's standing preferences; this test trades the day itself.
    market_demo.load(context)
    assert not ClearingResult.objects.exists()
    staff = context.staff_user
    member = context.showcase_member  # prosumer with PV and a battery
    pv_meter = next(m for m in context.meters_by_member[member.pk] if m.asset_kind == "pv")

    # --- orders and clearing, interval by interval (as the market hook does) -----------------
    for t in intervals(DAY):
        services.orders_generate(interval_start=t, now=t - timedelta(minutes=30))
        services.interval_clear(interval_start=t, now=t - timedelta(minutes=4))
    assert ClearingResult.objects.count() == 96
    trades = list(Trade.objects.order_by("id"))
    assert trades, "a June day in the demo village must produce P2P trades"
    assert Order.objects.values("member").distinct().count() > 100
    # No transformer of the demo grid carries more than its capacity in any interval.
    for clearing in ClearingResult.objects.all():
        flow: dict[int, int] = {}
        for t in clearing.trades.select_related("seller", "buyer"):
            if t.distance >= 1:
                seller_tx = t.seller.connection_points.get().transformer_id
                buyer_tx = t.buyer.connection_points.get().transformer_id
                flow[seller_tx] = flow.get(seller_tx, 0) + t.wh_from_seller
                flow[buyer_tx] = flow.get(buyer_tx, 0) - t.wh_from_seller
        for transformer in context.transformers:
            assert abs(flow.get(transformer.pk, 0)) <= transformer.capacity_kva * 250

    # --- the day's device-signed readings; one PV interval only estimated for now ------------
    _load(now=LATE, history_days=1.5, signed_days=0.5)
    _estimate(pv_meter, LATE)
    _load(now=DAY + timedelta(days=1), history_days=2, signed_days=1)
    day_readings = current_readings(
        interval_start__gte=DAY, interval_start__lt=DAY + timedelta(days=1)
    )
    assert day_readings.count() == 96 * len(context.meters)
    assert list(day_readings.exclude(quality=Quality.VALID).values_list("meter", flat=True)) == [
        pv_meter.pk
    ]

    # --- settlement ---------------------------------------------------------------------------
    run = SettlementRun.objects.get()
    assert services.settlement_runs_process(now=DAY + timedelta(days=1, hours=1)) == [run.pk]
    run.refresh_from_db()
    assert run.status == SettlementRun.Status.SETTLED
    assert run.members_pay + run.grid_export_revenue == (
        run.members_receive + run.grid_import_cost + run.network_fees
    )
    lines = SettlementLine.objects.filter(run=run)
    sums = lines.aggregate(**{f: Sum(f) for f in SettlementLine.AMOUNT_FIELDS})
    assert abs(sums["p2p_purchase"] + sums["p2p_sale"]) < Decimal("0.0001")
    assert abs(sums["network_fee"] - run.network_fees) < Decimal("0.0001")
    # every household, and each plant's settlement account selling the plant's output
    plants = len(demo_loader.PLANT_ACCOUNTS)
    assert lines.values("member").distinct().count() == 118 + plants
    assert services.settlement_runs_process(now=DAY + timedelta(days=1, hours=2)) == []

    # --- approve-and-anchor: one netted transaction with the trades' Merkle root --------------
    services.settlement_run_anchor(run=run, actor=staff)
    chain_outbox_sweep(wait_seconds=5)
    run.refresh_from_db()
    intent = ChainIntent.objects.get(pk=run.chain_intent_id)
    assert intent.status == ChainIntent.Status.CONFIRMED, intent.error
    energy_trading = chain.contract("EnergyTrading")
    assert "0x" + energy_trading.functions.settlementRoot(run.pk).call().hex() == run.trades_root
    net = SettlementLine.objects.filter(run=run, member=member).aggregate(
        **{f: Sum(f) for f in SettlementLine.AMOUNT_FIELDS}
    )
    expected = -minor(sum(net.values(), Decimal(0)))
    assert energy_trading.functions.balanceOf(member_chain_address(member)).call() == expected
    trade = trades[len(trades) // 2]
    proof = services.trade_proof(trade=trade)
    assert proof.in_root and proof.leaf == "0x" + trade_leaf_for(trade, run.pk).hex()
    assert services.trade_verify_on_chain(proof=proof) is True

    # --- the showcase member's statement: PDF totals = database totals -----------------------
    statement = services.statement_generate(member=member, month=DAY.date())
    services.statement_review(statement=statement, actor=staff)
    services.statement_issue(statement=statement, actor=staff)
    assert statement.lines.count() == lines.filter(member=member).count()
    assert Trade.objects.filter(Q(buyer=member) | Q(seller=member)).exists()
    assert Decimal(statement.totals["total"]) != 0
    _assert_pdf_totals_equal_db(statement)

    # --- the device's late real reading replaces the estimate → adjustment line --------------
    estimated = current_readings().get(meter=pv_meter, interval_start=LATE)
    corrected_wh = estimated.export_wh // 2 + 7
    assert corrected_wh != estimated.export_wh
    _deliver_real_reading(
        SimpleNamespace(keys={pv_meter.pk: demo_device_key(pv_meter.serial)}),
        pv_meter,
        LATE,
        export_wh=corrected_wh,
    )
    current = current_readings().get(meter=pv_meter, interval_start=LATE)
    assert (current.quality, current.export_wh) == (Quality.VALID, corrected_wh)
    assert services.settlement_corrections_scan(now=DAY + timedelta(days=3)) == 1
    adjustments = SettlementLine.objects.filter(run=run, is_adjustment=True)
    assert adjustments.filter(member=member, interval_start=LATE).exists()
    issued_total = Statement.objects.get(pk=statement.pk).totals["total"]
    with pytest.raises(Exception, match="issued statement"):
        services.statement_generate(member=member, month=DAY.date())
    nxt = services.statement_generate(member=member, month=(DAY + timedelta(days=31)).date())
    assert nxt.lines.filter(is_adjustment=True, interval_start=LATE).exists()
    assert Decimal(nxt.totals["adjustments"]) != 0
    assert Statement.objects.get(pk=statement.pk).totals["total"] == issued_total
    assert services.settlement_corrections_scan(now=DAY + timedelta(days=3)) == 0
