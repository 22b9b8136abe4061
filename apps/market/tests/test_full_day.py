"""Acceptance 2: a full day for a small cooperative, from orders to an on-chain batch and a
statement PDF whose totals equal the database totals; then a late corrected reading yields an
adjustment line on the next statement. Real PostgreSQL and a real anvil node."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from pypdf import PdfReader

from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import member_chain_address
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
from apps.market.tests.factories import (
    build_small_coop,
    day_start,
    intervals,
    profile_wh,
    set_preferences,
)
from apps.meters.models import Quality
from apps.meters.services import BackfillRow, readings_backfill

pytestmark = [pytest.mark.slow, pytest.mark.chain, pytest.mark.django_db]


def _readings(coop, start, day_factor, *, estimated=None):
    rows = []
    for i, member in enumerate(coop.members):
        for meter in coop.meters[member.pk]:
            for k, t in enumerate(intervals(start)):
                wh = profile_wh(i, meter.asset_kind, k, day_factor + (i % 5) * 0.02)
                is_est = estimated is not None and (meter.pk, t) == estimated
                rows.append(
                    BackfillRow(
                        meter_id=meter.pk,
                        interval_start=t,
                        import_wh=0 if meter.asset_kind == "pv" else wh,
                        export_wh=wh if meter.asset_kind == "pv" else 0,
                        quality=Quality.ESTIMATED if is_est else Quality.VALID,
                        private_key=None if is_est else coop.keys[meter.pk],
                    )
                )
    readings_backfill(rows=rows)


def _pdf_value(text: str, label: str) -> str:
    match = re.search(re.escape(label) + r"\s+(-?\d+\.\d{2})", text)
    assert match, f"{label!r} not found in the PDF text"
    return match.group(1)


def _assert_pdf_totals_equal_db(statement) -> None:
    """The statement PDF's text totals equal the sums of its settlement lines in the database,
    and its total is charges + credits + VAT on the charges."""
    text = "\n".join(
        page.extract_text()
        for page in PdfReader(io.BytesIO(services.statement_pdf(statement=statement))).pages
    )
    db = SettlementLine.objects.filter(statement=statement).aggregate(
        **{f: Sum(f) for f in SettlementLine.AMOUNT_FIELDS}
    )
    cents = Decimal("0.01")
    for label, field in (
        ("P2P energy purchased", "p2p_purchase"),
        ("Network fees", "network_fee"),
        ("Grid import", "grid_import"),
        ("P2P energy sold", "p2p_sale"),
        ("Grid export", "grid_export"),
    ):
        assert Decimal(_pdf_value(text, label)) == db[field].quantize(cents)
    assert _pdf_value(text, "Total due") == statement.totals["total"]
    charges = sum((db[f] for f in ("p2p_purchase", "network_fee", "grid_import")), Decimal(0))
    credits = db["p2p_sale"] + db["grid_export"]
    vat = (charges.quantize(cents) * statement.vat_rate).quantize(cents)
    assert (
        Decimal(statement.totals["total"])
        == charges.quantize(cents) + credits.quantize(cents) + vat
    )


def test_full_day(chain, django_assert_max_num_queries):
    coop = build_small_coop(12)
    set_preferences(coop)
    day = day_start()
    producer = coop.producers[0]
    pv_meter = next(m for m in coop.meters[producer.pk] if m.asset_kind == "pv")
    late_interval = day + timedelta(hours=12)
    # History for the seasonal-naive forecast (yesterday), then the day itself.
    _readings(coop, day - timedelta(days=1), 1.0)

    # --- orders and clearing, interval by interval ----------------------------------------
    manual_buyer = coop.members[7]
    for k, t in enumerate(intervals(day)):
        services.orders_generate(interval_start=t, now=t - timedelta(minutes=30))
        if k == 50:
            services.order_place(
                member=manual_buyer,
                actor=manual_buyer.user,
                interval_start=t,
                side=Order.Side.BID,
                wh=400,
                limit_price="0.30",
                now=t - timedelta(minutes=20),
            )
        services.interval_clear(interval_start=t, now=t - timedelta(minutes=4))
    assert ClearingResult.objects.count() == 96
    trades = list(Trade.objects.order_by("id"))
    assert trades, "a sunny day must produce P2P trades"
    assert Order.objects.filter(origin=Order.Origin.MANUAL, status__in=["matched", "partial"])
    # The nearly full transformer curtails some volume and is never overloaded.
    assert ClearingResult.objects.aggregate(c=Sum("curtailed_wh"))["c"] > 0
    tight = coop.transformers[2]
    cap = tight.capacity_kva * 250
    for clearing in ClearingResult.objects.all():
        flow = 0
        for t in clearing.trades.select_related("seller", "buyer"):
            if t.distance >= 1 and t.seller.connection_points.get().transformer_id == tight.pk:
                flow += t.wh_from_seller
            if t.distance >= 1 and t.buyer.connection_points.get().transformer_id == tight.pk:
                flow -= t.wh_from_seller
        assert abs(flow) <= cap
    # The green-only buyer only ever received green energy.
    assert all(t.green for t in Trade.objects.filter(buyer=coop.members[4]))

    # --- metered actuals (one PV interval only estimated for now), settlement ----------------
    _readings(coop, day, 1.05, estimated=(pv_meter.pk, late_interval))
    run = SettlementRun.objects.get()
    assert services.settlement_runs_process(now=day + timedelta(days=1, hours=1)) == [run.pk]
    run.refresh_from_db()
    assert run.status == SettlementRun.Status.SETTLED
    # Budget balance against the grid: members' payments + export revenue = receipts + import
    # cost + network fees, both from the run totals and from the stored lines.
    assert run.members_pay + run.grid_export_revenue == (
        run.members_receive + run.grid_import_cost + run.network_fees
    )
    lines = SettlementLine.objects.filter(run=run)
    sums = lines.aggregate(**{f: Sum(f) for f in SettlementLine.AMOUNT_FIELDS})
    assert abs(sums["p2p_purchase"] + sums["p2p_sale"]) < Decimal("0.0001")
    assert abs(sums["network_fee"] - run.network_fees) < Decimal("0.0001")
    # Traded vs delivered: each member-interval's energy balances.
    for line in lines:
        need, surplus = (
            max(line.import_wh - line.export_wh, 0),
            max(line.export_wh - line.import_wh, 0),
        )
        assert (
            need + line.sold_wh + line.grid_export_wh
            == surplus + line.bought_wh + line.grid_import_wh
        )
    # Idempotent: processing again changes nothing.
    assert services.settlement_runs_process(now=day + timedelta(days=1, hours=2)) == []
    assert SettlementLine.objects.filter(run=run).count() == lines.count()

    # --- on chain: one netted transaction with the trades' Merkle root -----------------------
    services.settlement_run_anchor(run=run, actor=coop.staff)
    chain_outbox_sweep(wait_seconds=5)
    run.refresh_from_db()
    from apps.chain.models import ChainIntent

    intent = ChainIntent.objects.get(pk=run.chain_intent_id)
    assert intent.status == ChainIntent.Status.CONFIRMED, intent.error
    energy_trading = chain.contract("EnergyTrading")
    assert "0x" + energy_trading.functions.settlementRoot(run.pk).call().hex() == run.trades_root
    member = coop.members[1]
    net = SettlementLine.objects.filter(run=run, member=member).aggregate(
        **{f: Sum(f) for f in SettlementLine.AMOUNT_FIELDS}
    )
    expected = -minor(sum(net.values(), Decimal(0)))
    assert energy_trading.functions.balanceOf(member_chain_address(member)).call() == expected
    # A member can verify their trade is in the anchored root, off and on chain.
    trade = trades[len(trades) // 2]
    proof = services.trade_proof(trade=trade)
    assert proof.in_root and proof.leaf == "0x" + trade_leaf_for(trade, run.pk).hex()
    assert services.trade_verify_on_chain(proof=proof) is True
    # A trade with another amount is not in the root.
    other = trades[0] if trades[0].pk != trade.pk else trades[-1]
    forged = dataclasses.replace(proof, leaf="0x" + trade_leaf_for(other, run.pk + 1).hex())
    assert services.trade_verify_on_chain(proof=forged) is False

    # --- statement: PDF totals = database totals ---------------------------------------------
    statement = services.statement_generate(member=producer, month=day.date())
    services.statement_review(statement=statement, actor=coop.staff)
    services.statement_issue(statement=statement, actor=coop.staff)
    _assert_pdf_totals_equal_db(statement)
    assert Decimal(statement.totals["p2p_sale"]) < 0  # the producer sold energy to members

    # --- a late corrected reading → adjustment line on the next statement --------------------
    _deliver_real_reading(coop, pv_meter, late_interval, export_wh=5)
    assert services.settlement_corrections_scan(now=day + timedelta(days=3)) == 1
    adjustments = SettlementLine.objects.filter(run=run, is_adjustment=True)
    assert adjustments.filter(member=producer, interval_start=late_interval).exists()
    # The issued statement is untouched; the adjustment lands on the next month's statement.
    issued_total = Statement.objects.get(pk=statement.pk).totals["total"]
    with pytest.raises(Exception, match="issued statement"):
        services.statement_generate(member=producer, month=day.date())
    nxt = services.statement_generate(member=producer, month=(day + timedelta(days=31)).date())
    assert nxt.lines.filter(is_adjustment=True, interval_start=late_interval).exists()
    assert Decimal(nxt.totals["adjustments"]) != 0
    assert Statement.objects.get(pk=statement.pk).totals["total"] == issued_total
    # Scanning again finds nothing new.
    assert services.settlement_corrections_scan(now=day + timedelta(days=3)) == 0


def _deliver_real_reading(coop, meter, interval_start, *, export_wh):
    """The device's late, signed reading for an interval that was only estimated."""
    from apps.meters.signing import SignedFields, sign_reading
    from apps.meters.tests.factories import current_readings, messages_ingest

    previous = current_readings().get(
        meter_id=meter.pk, interval_start=interval_start - timedelta(minutes=15)
    )
    fields = SignedFields(
        serial=meter.serial,
        seq=int(interval_start.timestamp()) // 900,
        interval_start=int(interval_start.timestamp()),
        interval_seconds=900,
        import_wh=0,
        export_wh=export_wh,
        register_import_wh=previous.register_import_wh,
        register_export_wh=previous.register_export_wh + export_wh,
    )
    signature = sign_reading(coop.keys[meter.pk], fields)
    message = {
        "v": 1,
        "serial": fields.serial,
        "seq": fields.seq,
        "start": fields.interval_start,
        "interval": 900,
        "import_wh": 0,
        "export_wh": export_wh,
        "register_import_wh": fields.register_import_wh,
        "register_export_wh": fields.register_export_wh,
        "sig": "0x" + signature.hex(),
    }
    result = messages_ingest([("test/readings", json.dumps(message).encode())])
    assert result.accepted == 1, result
