"""Acceptance 3 of the money loop, end to end on PostgreSQL and anvil: a late corrected reading
after a month is invoiced produces adjustment lines on the next month's invoice and in the next
netted on-chain settlement batch, and the auditor's billing ↔ chain reconciliation shows zero
unexplained difference (and a non-zero one when the chain and the books disagree)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from apps.billing.models import Invoice
from apps.billing.services import (
    billing_run,
    invoice_credit,
    invoice_issue,
    invoice_rectify,
    invoice_review,
    invoices_issue,
    invoices_review,
)
from apps.billing.tests.factories import SupplyContractFactory, SupplyTariffVersionFactory
from apps.chain.indexer import chain_events_index
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import member_chain_address
from apps.compliance.reports import report_build, report_verify
from apps.compliance.services import report_export
from apps.market import services
from apps.market.models import SettlementLine, SettlementRun
from apps.market.services.settlement import minor
from apps.market.tests.factories import (
    build_small_coop,
    day_start,
    intervals,
    profile_wh,
    set_preferences,
)
from apps.market.tests.test_full_day import _deliver_real_reading
from apps.meters.models import Quality
from apps.meters.services import BackfillRow, readings_backfill

pytestmark = [pytest.mark.slow, pytest.mark.chain, pytest.mark.django_db]

MIDDAY = range(44, 52)  # 11:00–13:00 UTC: PV produces, members trade
JUNE_1, JULY_1, AUGUST_1 = (datetime(2026, m, 1, tzinfo=UTC) for m in (6, 7, 8))


def _readings(coop, day, factor, *, estimated=None):
    rows = []
    for i, member in enumerate(coop.members):
        for meter in coop.meters[member.pk]:
            for k in MIDDAY:
                t = intervals(day)[k]
                wh = profile_wh(i, meter.asset_kind, k, factor + (i % 5) * 0.02)
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


def _trade_and_settle(coop, day, *, estimated=None) -> SettlementRun:
    """Yesterday's readings (forecast), orders and clearing at midday, the day's readings,
    settlement — the market's real path."""
    _readings(coop, day - timedelta(days=1), 1.0)
    for k in MIDDAY:
        t = intervals(day)[k]
        services.orders_generate(interval_start=t, now=t - timedelta(minutes=30))
        services.interval_clear(interval_start=t, now=t - timedelta(minutes=4))
    _readings(coop, day, 1.05, estimated=estimated)
    settled = services.settlement_runs_process(now=day + timedelta(days=1, hours=1))
    assert len(settled) == 1
    return SettlementRun.objects.get(pk=settled[0])


def _anchor(coop, run) -> SettlementRun:
    services.settlement_run_anchor(run=run, actor=coop.staff)
    chain_outbox_sweep(wait_seconds=5)
    chain_events_index()
    run.refresh_from_db()
    return run


def _bill(period: str, now: datetime) -> None:
    billing_run(period=period, now=now)
    first = date(int(period[:4]), int(period[5:]), 1)
    invoices_review(period=first, actor=None)
    invoices_issue(period=first, actor=None, now=now)


def _report(start: datetime, end: datetime):
    doc = report_build(kind="billing_chain_reconciliation", start=start, end=end)
    members = {t.name: t for t in doc.tables}["members"]
    batches = {t.name: t for t in doc.tables}["batches"]
    cols = {c: k for k, c in enumerate(members.columns)}
    bcols = {c: k for k, c in enumerate(batches.columns)}
    return doc, members, cols, batches, bcols


def test_a_late_corrected_reading_reaches_the_next_invoice_and_the_next_batch_and_reconciles(
    chain,
):
    coop = build_small_coop(6)
    set_preferences(coop)
    version = SupplyTariffVersionFactory()
    for member in coop.members:
        SupplyContractFactory(member=member, tariff=version.tariff)
    producer = coop.producers[0]
    pv_meter = next(m for m in coop.meters[producer.pk] if m.asset_kind == "pv")
    june, july = day_start(2026, 6, 10), day_start(2026, 7, 10)
    late_interval = intervals(june)[MIDDAY[3]]

    # --- June: trade, settle (one PV interval only estimated), batch on chain, invoice --------
    run1 = _anchor(coop, _trade_and_settle(coop, june, estimated=(pv_meter.pk, late_interval)))
    assert run1.status == SettlementRun.Status.ANCHORED and run1.chain_deltas
    _bill("2026-06", datetime(2026, 7, 2, tzinfo=UTC))
    june_invoices = Invoice.objects.filter(period=date(2026, 6, 1))
    assert june_invoices.count() == len(coop.members)
    assert set(june_invoices.values_list("status", flat=True)) == {"issued"}
    doc, members, cols, _, _ = _report(JUNE_1, JULY_1)
    assert all(row[cols["unexplained"]] == 0 for row in members.rows), members.rows
    assert any(row[cols["billed_p2p"]] != 0 for row in members.rows)  # members traded
    on_chain = sum(row[cols["on_chain_charge"]] for row in members.rows)
    assert on_chain != 0
    june_rows = {row[cols["member"]]: row for row in members.rows}

    # --- after issue: the device's real reading of the estimated interval arrives -------------
    _deliver_real_reading(coop, pv_meter, late_interval, export_wh=5)
    assert services.settlement_corrections_scan(now=june + timedelta(days=3)) == 1
    adjustments = SettlementLine.objects.filter(run=run1, is_adjustment=True)
    assert adjustments.filter(member=producer, interval_start=late_interval).exists()
    assert not adjustments.filter(chain_run__isnull=False).exists()  # waiting for a batch
    june_gross = {i.pk: i.gross for i in june_invoices}

    # --- July: the next batch carries the adjustments ----------------------------------------
    run2 = _anchor(coop, _trade_and_settle(coop, july))
    assert set(adjustments.values_list("chain_run", flat=True)) == {run2.pk}
    adjustment_net = sum((a.net_amount for a in adjustments.filter(member=producer)), Decimal(0))
    july_own = sum(
        (x.net_amount for x in SettlementLine.objects.filter(run=run2, member=producer)),
        Decimal(0),
    )
    recorded = run2.chain_deltas[str(producer.pk)]
    assert Decimal(recorded["adjustments"]) == adjustment_net != 0
    energy_trading = chain.contract("EnergyTrading")
    balance = energy_trading.functions.balanceOf(member_chain_address(producer)).call()
    assert balance == run1.chain_deltas[str(producer.pk)]["delta_minor"] + recorded["delta_minor"]
    assert recorded["delta_minor"] == -minor(july_own + adjustment_net)

    # --- the July invoice carries the June adjustment lines; June's stay as issued -----------
    _bill("2026-07", datetime(2026, 8, 2, tzinfo=UTC))
    july_invoice = Invoice.objects.get(member=producer, period=date(2026, 7, 1))
    lines = list(july_invoice.lines.filter(is_adjustment=True))
    assert lines and all(line.description.startswith("Adjustment 2026-06") for line in lines)
    assert {i.pk: i.gross for i in Invoice.objects.filter(period=date(2026, 6, 1))} == june_gross

    # --- the auditor's reconciliation: zero unexplained, the adjustment traced to its batch ---
    doc, members, cols, batches, bcols = _report(JUNE_1, AUGUST_1)
    assert all(row[cols["unexplained"]] == 0 for row in members.rows), members.rows
    assert all(row[cols["not_yet_on_chain"]] == 0 for row in members.rows)
    assert dict(doc.totals)["Unexplained difference"] == 0
    carried = [
        row
        for row in batches.rows
        if row[bcols["member"]] == producer.membership_number and row[bcols["batch_run"]] == run2.pk
    ]
    assert carried and carried[0][bcols["adjustments_on_invoices"]] > 0
    assert carried[0][bcols["delta_minor_on_chain"]] == recorded["delta_minor"]
    assert carried[0][bcols["state"]] == "applied on chain"
    body, _, _ = report_export(doc=doc, fmt="csv", actor=None)
    assert report_verify(body, against_db=True).verdict == "NOT_YET_ANCHORED"
    chain_outbox_sweep(wait_seconds=5)
    chain_events_index()
    assert report_verify(body, against_db=True).verdict == "VERIFIED"

    # --- June corrected: one invoice only annulled, one annulled and replaced -----------------
    traders = [m for m in coop.members if m != producer and june_rows[m.membership_number][
        cols["billed_p2p"]] != 0]  # fmt: skip
    credited, rectified = (
        Invoice.objects.get(member=m, period=date(2026, 6, 1)) for m in traders[:2]
    )
    note = invoice_credit(invoice=credited, actor=None, reason="goodwill", now=AUGUST_1)
    _, replacement = invoice_rectify(invoice=rectified, actor=None, reason="tariff", now=AUGUST_1)
    invoice_issue(invoice=invoice_review(invoice=replacement, actor=None), actor=None, now=AUGUST_1)
    doc, members, cols, _, _ = _report(JUNE_1, JULY_1)
    assert dict(doc.totals)["Unexplained difference"] == 0, members.rows
    rows = {row[cols["member"]]: row for row in members.rows}
    row, before = rows[traders[0].membership_number], june_rows[traders[0].membership_number]
    assert row[cols["billed_p2p"]] == 0  # billed, then all taken back by the credit note
    assert row[cols["credited_not_rebilled"]] == before[cols["billed_p2p"]]
    assert row[cols["on_chain_charge"]] == before[cols["on_chain_charge"]]
    assert f"annulled by {note.number}" in row[cols["invoices"]]
    assert "credited by credit note, not re-billed" in row[cols["explanation"]]
    row, before = rows[traders[1].membership_number], june_rows[traders[1].membership_number]
    assert row[cols["billed_p2p"]] == before[cols["billed_p2p"]]  # the replacement bills it again
    assert row[cols["credited_not_rebilled"]] == 0
    assert "replaced by R2026-" in row[cols["invoices"]]

    # --- an invoice and the chain disagree (a P2P line edited behind the services' back) -----
    sale = july_invoice.lines.filter(kind="p2p_sale", is_adjustment=False).get()
    type(sale).objects.filter(pk=sale.pk).update(net=sale.net + 1)
    _, members, cols, _, _ = _report(JUNE_1, AUGUST_1)
    row = next(r for r in members.rows if r[cols["member"]] == producer.membership_number)
    # The euro billed too much, plus that invoice's cents rounding, which no longer counts as
    # explained once the difference exceeds its bound.
    assert abs(row[cols["unexplained"]] + 1) < Decimal("0.05")
    assert row[cols["explanation"]].startswith("UNEXPLAINED -1.0")
