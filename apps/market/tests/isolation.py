"""Member-isolation cases of the market (collected by tests/test_member_isolation.py)."""

from __future__ import annotations

from django.urls import reverse

from apps.accounts.testing import IsolationCase
from apps.market.tests.factories import make_issued_statement, make_trade


def _trade_verify(member):
    return reverse("market:trade_verify", args=[make_trade(member, settled=True).pk])


def _trade_proof(member):
    return reverse("market-api:trade_proof", args=[make_trade(member, settled=True).pk])


def _order(member):
    return reverse("market-api:order_detail", args=[make_trade(member).buyer_order_id])


def _statement(name):
    def make(member):
        return reverse(name, args=[make_issued_statement(member).pk])

    return make


ISOLATION_CASES = [
    IsolationCase("market:trade_verify", _trade_verify),
    IsolationCase("market-api:trade_proof", _trade_proof),
    IsolationCase("market-api:order_detail", _order),
    IsolationCase("market:statement_detail", _statement("market:statement_detail")),
    IsolationCase("market:statement_pdf", _statement("market:statement_pdf")),
    IsolationCase("market:statement_csv", _statement("market:statement_csv")),
]
ISOLATION_EXEMPT = {"market:run_anchor": "staff only (approve-and-anchor a settlement run)"}
