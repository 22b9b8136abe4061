"""Compliance reads other apps only through their selectors; the reports and the data export
make no more queries than when they read those apps' tables directly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.chain.models import ChainIntent, MeterAnchor
from apps.chain.selectors import (
    chain_intent_get,
    chain_intents,
    meter_anchor_get,
    meter_anchors_between,
)
from apps.compliance.data_export import member_data_export
from apps.compliance.reports import report_build, report_verify
from apps.compliance.services import member_open_settlements, report_export
from apps.incentives.selectors import (
    certificate_chain_intent_ids,
    certificates_transferred_wh_by_settlement,
    member_certificate_holdings,
)
from apps.market.selectors import (
    SETTLEMENT_LINE_EXPORT_FIELDS,
    member_open_settlements_count,
    member_settlement_line_values,
    member_statement_rows,
    member_trade_rows,
    settlement_run_trades_root,
    settlement_runs_reconciliation,
)

from .conftest import DAY

pytestmark = pytest.mark.django_db

START, END = DAY - timedelta(days=1), DAY + timedelta(days=2)


@pytest.mark.parametrize(
    ("kind", "queries"),
    [("settlement_reconciliation", 4), ("certificate_registry", 3), ("carbon", 8)],
)
def test_reports_on_other_apps_keep_their_query_counts(
    world, django_assert_num_queries, kind, queries
):
    with django_assert_num_queries(queries):
        report_build(kind=kind, start=START, end=END)


def test_verifying_anchors_costs_one_query_per_anchor(world, django_assert_num_queries):
    doc = report_build(kind="settlement_reconciliation", start=START, end=END)
    body, _, _ = report_export(doc=doc, fmt="csv", actor=None)
    assert len(doc.anchors) == 1
    # the report's own document anchor: our outbox intent, the contract registry (no contract
    # deployed here, so the chain is not asked) and the indexed event; then one per anchor
    with django_assert_num_queries(3 + 1):
        assert report_verify(body).verdict == "NOT_YET_ANCHORED"


def test_the_member_data_export_keeps_its_query_count(world, django_assert_num_queries):
    # one query per file: membership.json, sites.csv, notifications.csv and governance.csv are
    # the last four added
    with django_assert_num_queries(15):
        member_data_export(member=world.consumer)


def test_open_settlements_keep_their_query_count(world, django_assert_num_queries):
    with django_assert_num_queries(3):
        assert member_open_settlements(member=world.consumer) == []


def test_market_selectors_for_compliance(world, django_assert_num_queries):
    with django_assert_num_queries(3):
        (run,) = settlement_runs_reconciliation(start=START, end=END)
    assert (run.run_id, run.traded_wh, run.trades_root) == (
        world.run.pk,
        400,
        world.run.trades_root,
    )
    with django_assert_num_queries(1):
        assert settlement_run_trades_root(run_id=world.run.pk) == world.run.trades_root
    assert settlement_run_trades_root(run_id=world.run.pk + 1000) is None
    with django_assert_num_queries(3):
        counts = member_open_settlements_count(member=world.consumer)
    assert (counts.open_orders, counts.unsettled_trades, counts.unsettled_lines) == (0, 0, 0)
    with django_assert_num_queries(1):
        (trade,) = member_trade_rows(member=world.consumer)
    assert (trade.id, trade.side, trade.wh_delivered) == (world.trade.pk, "buy", 400)
    assert member_trade_rows(member=world.producer)[0].side == "sell"
    with django_assert_num_queries(1):
        assert member_statement_rows(member=world.consumer) == []
    with django_assert_num_queries(1):
        lines = member_settlement_line_values(member=world.consumer)
    assert all(len(row) == len(SETTLEMENT_LINE_EXPORT_FIELDS) for row in lines)


def test_incentives_selectors_for_compliance(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        moved = certificates_transferred_wh_by_settlement(settlement_refs=[str(world.run.pk)])
    assert moved == {str(world.run.pk): 400}
    with django_assert_num_queries(1):
        holdings = list(member_certificate_holdings(member=world.consumer))
    assert sum(c.wh for c in holdings if c.status != "transferred") == 400
    ids = [c.pk for c in holdings]
    with django_assert_num_queries(1):
        intents = certificate_chain_intent_ids(certificate_ids=ids)
    assert intents == sorted({int(c.chain_intent_ref) for c in holdings})


def test_chain_selectors_for_compliance(world, django_assert_num_queries):
    intent = ChainIntent.objects.create(
        intent="meter_anchor", payload={}, idempotency_key="test:anchor", tx_hash="0xabc"
    )
    MeterAnchor.objects.create(
        interval_start=DAY, version=1, root="0x01", leaf_count=3, leaves=b"", intent=intent
    )
    with django_assert_num_queries(1):
        (anchor,) = meter_anchors_between(start=START, end=END)
    assert (anchor.root, anchor.tx_hash, anchor.intent_id) == ("0x01", "0xabc", intent.pk)
    with django_assert_num_queries(1):
        assert meter_anchor_get(interval_start=DAY, version=1) == anchor
    assert meter_anchor_get(interval_start=DAY, version=2) is None
    with django_assert_num_queries(1):
        (record,) = chain_intents(intent_ids=[intent.pk, intent.pk + 1000])
    assert (record.id, record.intent, record.tx_hash) == (intent.pk, "meter_anchor", "0xabc")
    assert chain_intent_get(intent_id=intent.pk) == record
    assert chain_intent_get(intent_id=intent.pk + 1000) is None
