"""The monthly billing run: one draft invoice per member and month from the market statement.

Idempotent per period and member: a re-run refreshes draft invoices (and their statements) and
leaves reviewed and issued ones alone. A dry run computes everything and rolls it back.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.selectors import member_numbers_by_id
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.billing import invoicing
from apps.billing.lock_objects import billing_run_lock, period_invoices_lock
from apps.billing.models import Invoice, InvoiceLine, SupplyContract
from apps.billing.selectors import (
    PriceBook,
    contracts_active,
    invoice_lines_compute,
    month_days,
    period_invoice_totals,
    period_sepa_files,
    plant_credits_for_month,
)
from apps.core.bulk import copy_insert
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.incentives.selectors import redeemed_tokens_for_month
from apps.incentives.services import redemptions_confirm, redemptions_credit
from apps.market.selectors import members_with_lines_for_month, statements_energy
from apps.market.services import statements_generate_for_members
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
    InvoiceLine.objects.bulk_create(_line_rows(invoice, lines))
    invoice.net, invoice.vat, invoice.gross = totals.net, totals.vat, totals.gross
    invoice.vat_breakdown = [
        {"rate": str(g.rate), "base": str(g.base), "vat": str(g.vat)} for g in totals.vat_groups
    ]
    invoice.save()
    return invoice


def billing_summary(*, period: date) -> dict[str, Any]:
    """The JSON summary of a period's regular invoices (amounts as decimal strings)."""
    sums = period_invoice_totals(period=period)
    return {
        "period": f"{period:%Y-%m}",
        "invoices": sums["invoices"],
        "total_net": str(sums["net"]),
        "total_vat": str(sums["vat"]),
        "total_gross": str(sums["gross"]),
        "direct_debit_total": str(sums["direct_debit"]),
        "payout_total": str(sums["payout"]),
        "sepa_files": [f.name for f in period_sepa_files(period=period)],
    }


def _line_rows(invoice: Invoice, lines: list[invoicing.Line]) -> list[InvoiceLine]:
    return [
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
    ]


LINE_FIELDS = (
    "position",
    "kind",
    "is_adjustment",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "net",
    "vat_rate",
)


def _line_tuples(lines: list[invoicing.Line]) -> list[tuple]:
    return [
        (k, ln.kind, ln.is_adjustment, ln.description, ln.quantity, ln.unit, ln.unit_price,
         ln.net, ln.vat_rate)
        for k, ln in enumerate(lines, start=1)
    ]  # fmt: skip


def _header(invoice: Invoice) -> tuple:
    return (
        invoice.run_id,
        invoice.statement_id,
        invoice.currency,
        invoice.payment_method,
        invoice.net,
        invoice.vat,
        invoice.gross,
        invoice.vat_breakdown,
    )


def _set_totals(invoice: Invoice, lines: list[invoicing.Line]) -> None:
    totals = invoicing.totals(lines)
    invoice.net, invoice.vat, invoice.gross = totals.net, totals.vat, totals.gross
    invoice.vat_breakdown = [
        {"rate": str(g.rate), "base": str(g.base), "vat": str(g.vat)} for g in totals.vat_groups
    ]


def _members_without_contract(
    *, period: date, end: datetime, billed: set[int]
) -> list[dict[str, str]]:
    """Members whose settlement lines this month's statement would carry but who hold no
    supply contract in the month: not invoiced, listed in the run's summary for staff."""
    ids = members_with_lines_for_month(month=period, end=end) - billed
    numbers = member_numbers_by_id(member_ids=sorted(ids))
    return [{"member": numbers[m], "member_id": str(m)} for m in sorted(numbers)]


def billing_run(
    *, period: str | date, dry_run: bool = False, actor: Actor = None, now: datetime | None = None
) -> dict[str, Any]:
    """Bill every member with a supply contract in the month `period` (YYYY-MM).

    Batched: the statements, their energy sums, tariffs, contracts and rewards are read once
    for all members, and the invoices and their lines written in bulk (a fixed number of queries
    per run, plus one audit row per statement). Members with settlement lines but no contract
    are not invoiced; the summary lists them (`without_contract`) for staff."""
    now = now or timezone.now()
    first = parse_period(period)
    start, end = month_bounds(first)
    if end > now:
        raise ApplicationError("This month is not over yet.", {"period": f"{first:%Y-%m}"})
    _, last, _ = month_days(first)
    with transaction.atomic():
        run = billing_run_lock(period=first, now=now)  # one run per period at once
        redemptions_confirm(actor=actor)  # burns the chain confirmed since the last run
        tokens = redeemed_tokens_for_month(month=first, end=end)
        plant_credits = plant_credits_for_month(month=first)
        book = PriceBook()
        by_member: dict[int, list[SupplyContract]] = defaultdict(list)
        for contract in contracts_active(first=first, last=last):
            by_member[contract.member_id].append(contract)
        invoices = {i.member_id: i for i in period_invoices_lock(period=first)}
        refresh = [
            m
            for m in sorted(by_member)
            if m not in invoices or invoices[m].status == Invoice.Status.DRAFT
        ]  # reviewed or issued invoices are left alone
        statements = statements_generate_for_members(
            member_ids=refresh, month=first, actor=actor, now=now
        )
        energy = statements_energy(statement_ids=[s.pk for s in statements.values()])
        new: list[Invoice] = []
        drafts: list[Invoice] = []
        computed: list[tuple[Invoice, list[invoicing.Line]]] = []
        header_changed: set[int] = set()
        for member_id in refresh:
            contracts = by_member[member_id]
            statement = statements[member_id]
            lines = invoice_lines_compute(
                member=member_id,
                period=first,
                contracts=contracts,
                statement=statement,
                prices_book=book,
                reward_tokens=tokens.get(member_id, 0),
                energy=energy.get(statement.pk, []),
                plant_credits=plant_credits.get(member_id, []),
            )
            invoice = invoices.get(member_id)
            if invoice is None:
                invoice = Invoice(member_id=member_id, period=first, kind=Invoice.Kind.INVOICE)
                new.append(invoice)
            else:
                drafts.append(invoice)
            before = _header(invoice)
            invoice.run = run
            invoice.statement_id = statement.pk
            invoice.currency = settings.BILLING_CURRENCY
            invoice.payment_method = contracts[0].payment_method
            _set_totals(invoice, lines)
            if invoice.pk is not None and before != _header(invoice):
                header_changed.add(invoice.pk)
            computed.append((invoice, lines))
        # A re-run rewrites only the drafts whose lines or header changed.
        stored: dict[int, list[tuple]] = defaultdict(list)
        for row in InvoiceLine.objects.filter(invoice__in=[d.pk for d in drafts]).values_list(
            "invoice_id", *LINE_FIELDS
        ):
            stored[row[0]].append(row[1:])
        unchanged = {
            d.pk
            for d, lines in computed
            if d.pk in stored and d.pk not in header_changed and stored[d.pk] == _line_tuples(lines)
        }
        drafts = [d for d in drafts if d.pk not in unchanged]
        computed = [(i, lines) for i, lines in computed if i.pk is None or i.pk not in unchanged]
        InvoiceLine.objects.filter(invoice__in=[d.pk for d in drafts]).delete()
        Invoice.objects.bulk_update(
            drafts,
            ["run", "statement_id", "currency", "payment_method", "net", "vat", "gross",
             "vat_breakdown"],
            batch_size=500,
        )  # fmt: skip
        Invoice.objects.bulk_create(new, batch_size=2000)
        copy_insert(
            InvoiceLine,
            ("invoice", *LINE_FIELDS),
            ((invoice.pk, *row) for invoice, lines in computed for row in _line_tuples(lines)),
        )
        redemptions_credit(month=first, end=end, member_ids=refresh, actor=actor)
        summary = billing_summary(period=first)
        summary["without_contract"] = _members_without_contract(
            period=first, end=end, billed=set(by_member)
        )
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
