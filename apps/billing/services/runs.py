"""The monthly billing run: one draft invoice per member and month from the market statement.

Idempotent per period and member: a re-run refreshes draft invoices (and their statements) and
leaves reviewed and issued ones alone. A dry run computes everything and rolls it back.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.billing import invoicing
from apps.billing.lock_objects import billing_run_lock, member_invoice_lock_for_period
from apps.billing.models import BillingRun, Invoice, InvoiceLine, PaymentMethod, SupplyContract
from apps.billing.selectors import (
    PriceBook,
    contracts_active,
    invoice_lines_compute,
    month_days,
    period_invoices,
    period_sepa_files,
)
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.incentives.selectors import reward_tokens_by_member
from apps.market.models import Statement
from apps.market.selectors import member_statement_for_month
from apps.market.services import statement_generate
from apps.market.services.statements import month_bounds

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_period(value: str | date) -> date:
    """'YYYY-MM' (or a date) → the first day of that month."""
    if isinstance(value, date):
        return value.replace(day=1)
    match = PERIOD_RE.match(value or "")
    if match is None:
        raise ApplicationError("The period must look like YYYY-MM.", {"period": value})
    return date(int(match[1]), int(match[2]), 1)


def invoice_lines_write(*, invoice: Invoice, lines: list[invoicing.Line]) -> Invoice:
    """Replace a draft's lines and totals (never called for an issued document)."""
    if invoice.status == Invoice.Status.ISSUED:
        raise ApplicationError("An issued invoice is never edited.", {"invoice": invoice.number})
    totals = invoicing.totals(lines)
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=k,
            kind=line.kind,
            is_adjustment=line.is_adjustment,
            description=line.description,
            quantity=line.quantity,
            unit=line.unit,
            unit_price=line.unit_price,
            net=line.net,
            vat_rate=line.vat_rate,
        )
        for k, line in enumerate(lines, start=1)
    )
    invoice.net, invoice.vat, invoice.gross = totals.net, totals.vat, totals.gross
    invoice.vat_breakdown = [
        {"rate": str(g.rate), "base": str(g.base), "vat": str(g.vat)} for g in totals.vat_groups
    ]
    invoice.save()
    return invoice


def _member_statement(*, member, period: date, actor: Actor, now: datetime) -> Statement:
    statement = member_statement_for_month(member=member, month=period)
    if statement is not None and statement.status == Statement.Status.ISSUED:
        return statement
    return statement_generate(member=member, month=period, actor=actor, now=now)


def _invoice_refresh(
    *,
    member,
    period: date,
    contracts: list[SupplyContract],
    run: BillingRun,
    actor: Actor,
    now: datetime,
    prices_book: PriceBook,
    reward_tokens: int,
) -> Invoice:
    invoice = member_invoice_lock_for_period(member=member, period=period)
    if invoice is not None and invoice.status != Invoice.Status.DRAFT:
        return invoice  # reviewed or issued: left alone
    statement = _member_statement(member=member, period=period, actor=actor, now=now)
    lines = invoice_lines_compute(
        member=member,
        period=period,
        contracts=contracts,
        statement=statement,
        prices_book=prices_book,
        reward_tokens=reward_tokens,
    )
    if invoice is None:
        invoice = Invoice(member=member, period=period, kind=Invoice.Kind.INVOICE)
    invoice.run = run
    invoice.statement_id = statement.pk
    invoice.currency = settings.BILLING_CURRENCY
    invoice.payment_method = contracts[0].payment_method
    invoice.save()
    return invoice_lines_write(invoice=invoice, lines=lines)


def billing_summary(*, period: date) -> dict[str, Any]:
    """The JSON summary of a period's regular invoices (amounts as decimal strings)."""
    invoices = list(period_invoices(period=period).filter(kind=Invoice.Kind.INVOICE))
    zero = Decimal("0.00")
    return {
        "period": f"{period:%Y-%m}",
        "invoices": len(invoices),
        "total_net": str(sum((i.net for i in invoices), zero)),
        "total_vat": str(sum((i.vat for i in invoices), zero)),
        "total_gross": str(sum((i.gross for i in invoices), zero)),
        "direct_debit_total": str(
            sum(
                (
                    i.gross
                    for i in invoices
                    if i.gross > 0 and i.payment_method == PaymentMethod.DIRECT_DEBIT
                ),
                zero,
            )
        ),
        "payout_total": str(sum((-i.gross for i in invoices if i.gross < 0), zero)),
        "sepa_files": [f.name for f in period_sepa_files(period=period)],
    }


def billing_run(
    *, period: str | date, dry_run: bool = False, actor: Actor = None, now: datetime | None = None
) -> dict[str, Any]:
    """Bill every member with a supply contract in the month `period` (YYYY-MM)."""
    now = now or timezone.now()
    first = parse_period(period)
    _, end = month_bounds(first)
    if end > now:
        raise ApplicationError("This month is not over yet.", {"period": f"{first:%Y-%m}"})
    _, last, _ = month_days(first)
    with transaction.atomic():
        run = billing_run_lock(period=first, now=now)  # one run per period at once
        start, _ = month_bounds(first)
        tokens = reward_tokens_by_member(start=start, end=end)
        book = PriceBook()
        by_member: dict[int, list[SupplyContract]] = defaultdict(list)
        for contract in contracts_active(first=first, last=last):
            by_member[contract.member_id].append(contract)
        for contracts in by_member.values():
            _invoice_refresh(
                member=contracts[0].member,
                period=first,
                contracts=contracts,
                run=run,
                actor=actor,
                now=now,
                prices_book=book,
                reward_tokens=tokens.get(contracts[0].member_id, 0),
            )
        summary = billing_summary(period=first)
        if dry_run:
            transaction.set_rollback(True)
            return summary
        run.summary = summary
        run.finished_at = timezone.now()
        run.save(update_fields=["summary", "finished_at"])
        audit_log_write(
            event=AuditEvent.BILLING_RUN_COMPLETED, actor=actor, target=run, details=summary
        )
    return summary
