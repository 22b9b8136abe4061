"""Row locks of the market app (see apps/core/locks.py).

Clearing locks the settlement run before the interval's orders; nothing locks orders before a
run, so order writers and clearing cannot deadlock.
"""

from __future__ import annotations

from datetime import date, datetime

from apps.accounts.models import Member
from apps.core.locks import lock_first, lock_row, lock_rows
from apps.market.models import Order, SettlementRun, Statement


def settlement_run_lock(run_id: int) -> SettlementRun:
    return lock_row(SettlementRun.objects.all(), run_id)


def open_orders_lock_for_clearing(interval_start: datetime) -> list[Order]:
    """Every open order of the interval, in primary-key order."""
    return lock_rows(Order.objects.filter(interval_start=interval_start, status=Order.Status.OPEN))


def open_orders_lock_for_member(*, member: Member, interval_start: datetime) -> list[Order]:
    """The member's open orders of the interval (the ones a new order replaces)."""
    return lock_rows(
        Order.objects.filter(member=member, interval_start=interval_start, status=Order.Status.OPEN)
    )


def member_order_lock(*, member: Member, order_id: int) -> Order | None:
    """The member's order `order_id`, or None when the member has no such order."""
    return lock_first(Order.objects.filter(member=member, pk=order_id))


def statement_lock(statement_id: int) -> Statement:
    return lock_row(Statement.objects.all(), statement_id)


def member_statement_lock(*, member: Member, month: date) -> Statement | None:
    """The member's statement of `month` (first day), or None when there is none yet."""
    return lock_first(Statement.objects.filter(member=member, month=month))


def month_statements_lock(*, member_ids: list[int], month: date) -> list[Statement]:
    """The statements of `month` (first day) of these members, in primary-key order."""
    return lock_rows(Statement.objects.filter(member_id__in=member_ids, month=month))
