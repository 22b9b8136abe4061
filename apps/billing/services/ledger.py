"""The member ledger: a small double-entry journal of our own (LedgerEntry/LedgerLine).

Why our own: django-hordak and django-ledger bring their own account trees, currencies and
money types for a general ledger; billing needs five accounts, one currency and sums per member
and per invoice, which two tables and one check (lines sum to zero) give. The cooperative's
accounting software stays the general ledger of record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction

from apps.billing.models import Invoice, LedgerEntry, LedgerLine
from apps.core.exceptions import ApplicationError

Account = LedgerLine.Account


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    amount: Decimal
    member_id: int | None = None
    invoice_id: int | None = None


@transaction.atomic
def ledger_entry_post(
    *, kind: str, booked_on: date, description: str, postings: list[Posting]
) -> LedgerEntry:
    """Append one balanced entry (its postings sum to zero; zero postings are left out)."""
    postings = [p for p in postings if p.amount != 0]
    if sum((p.amount for p in postings), Decimal(0)) != 0:
        raise ApplicationError("A ledger entry must balance.", {"description": description})
    entry = LedgerEntry.objects.create(kind=kind, booked_on=booked_on, description=description)
    LedgerLine.objects.bulk_create(
        LedgerLine(
            entry=entry,
            account=p.account,
            amount=p.amount,
            member_id=p.member_id,
            invoice_id=p.invoice_id,
        )
        for p in postings
    )
    return entry


def ledger_document_post(*, invoice: Invoice) -> LedgerEntry:
    """An issued invoice or credit note: the member owes its gross, revenue and VAT its parts.
    Share capital (and the credit note refunding it) is the members' equity, not revenue."""
    if invoice.issue_date is None:
        raise ApplicationError("Only an issued document is posted.", {"invoice": invoice.pk})
    shares = invoice.kind == Invoice.Kind.SHARE_CAPITAL or (
        invoice.original is not None and invoice.original.kind == Invoice.Kind.SHARE_CAPITAL
    )
    return ledger_entry_post(
        kind=LedgerEntry.Kind.DOCUMENT,
        booked_on=invoice.issue_date,
        description=f"{invoice.get_kind_display()} {invoice.number}",
        postings=[
            Posting(Account.RECEIVABLE, invoice.gross, invoice.member_id, invoice.pk),
            Posting(Account.EQUITY if shares else Account.REVENUE, -invoice.net),
            Posting(Account.VAT, -invoice.vat),
        ],
    )
