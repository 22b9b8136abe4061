"""Bank reconciliation: import a camt.053 statement and match its entries to invoices.

Credits are matched by end-to-end id (our direct-debit collections) or by the invoice number in
the structured or unstructured reference (transfers); debits by end-to-end id to our payouts or,
for R-transactions, to the collection they return. A return re-opens the invoice and charges
the bank's fee to the member. Anything else waits in the unmatched queue for staff.
A file that is not a camt.053, is for another account or was imported before is refused with a
clear message and nothing is imported.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.billing.camt import CamtEntry, CamtError, parse_camt053
from apps.billing.invoicing import number_from_creditor_reference
from apps.billing.lock_objects import bank_transaction_lock, payment_instruction_lock
from apps.billing.models import (
    BankStatement,
    BankTransaction,
    Invoice,
    LedgerEntry,
    PaymentInstruction,
    SepaFile,
)
from apps.billing.services.ledger import Account, Posting, ledger_entry_post
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.notifications.models import Kind as NotificationKind
from apps.notifications.services import notify

NUMBER_RE = re.compile(r"\b([FAR]\d{4}-\d{6})\b")


def _instruction(end_to_end_id: str) -> PaymentInstruction | None:
    if not end_to_end_id:
        return None
    return payment_instruction_lock(end_to_end_id)


def _invoice_by_reference(reference: str) -> Invoice | None:
    """By the structured creditor reference (RF…) or the invoice number in the text."""
    number = number_from_creditor_reference(reference or "")
    if number is None:
        match = NUMBER_RE.search(reference or "")
        number = match[1] if match else None
    if number is None:
        return None
    return Invoice.objects.filter(number=number, status=Invoice.Status.ISSUED).first()


def _set_status(instruction: PaymentInstruction, status: str, actor: Actor) -> None:
    instruction.transition_to(status, actor=actor)


def _payment(tx: BankTransaction, invoice: Invoice) -> dict[str, Any]:
    """Post a received payment of `invoice`; returns the matched entry's fields."""
    ledger_entry_post(
        kind=LedgerEntry.Kind.PAYMENT,
        booked_on=tx.booking_date,
        description=f"Payment {invoice.number}",
        postings=[
            Posting(Account.BANK, tx.amount),
            Posting(Account.RECEIVABLE, -tx.amount, invoice.member_id, invoice.pk),
        ],
    )
    return {"kind": BankTransaction.Kind.PAYMENT, "invoice": invoice}


def _match(tx: BankTransaction, entry: CamtEntry, actor: Actor) -> dict[str, Any]:
    """Match a new (unsaved) entry; returns the fields of a matched entry (kind, invoice, fee),
    empty when it stays unmatched."""
    instruction = _instruction(entry.end_to_end_id)
    if entry.amount > 0:
        if instruction is not None and instruction.sepa_file.kind == SepaFile.Kind.COLLECTION:
            _set_status(instruction, PaymentInstruction.Status.SETTLED, actor)
            return _payment(tx, instruction.invoice)
        invoice = _invoice_by_reference(entry.reference)
        if invoice is not None:
            return _payment(tx, invoice)
        return {}
    if instruction is None:
        return {}
    invoice = instruction.invoice
    if instruction.sepa_file.kind == SepaFile.Kind.TRANSFER and not entry.return_reason:
        _set_status(instruction, PaymentInstruction.Status.SETTLED, actor)
        ledger_entry_post(
            kind=LedgerEntry.Kind.PAYOUT,
            booked_on=tx.booking_date,
            description=f"Payout {invoice.number}",
            postings=[
                Posting(Account.BANK, tx.amount),
                Posting(Account.RECEIVABLE, -tx.amount, invoice.member_id, invoice.pk),
            ],
        )
        return {"kind": BankTransaction.Kind.PAYOUT, "invoice": invoice}
    if instruction.sepa_file.kind == SepaFile.Kind.COLLECTION:
        # An R-transaction: the collected amount comes back, plus the bank's fee.
        returned = instruction.amount
        fee = entry.charges or max(-entry.amount - returned, Decimal(0))
        _set_status(instruction, PaymentInstruction.Status.RETURNED, actor)
        ledger_entry_post(
            kind=LedgerEntry.Kind.RETURN,
            booked_on=tx.booking_date,
            description=f"Return {invoice.number} ({entry.return_reason or 'no reason'})",
            postings=[
                Posting(Account.BANK, -(returned + fee)),
                Posting(Account.RECEIVABLE, returned, invoice.member_id, invoice.pk),
                Posting(Account.RECEIVABLE, fee, invoice.member_id, invoice.pk),
            ],
        )
        notify(
            member=invoice.member,
            kind=NotificationKind.PAYMENT_PROBLEM,
            subject=f"Your direct debit for {invoice.number} was returned",
            body=(
                f"Your bank returned the direct debit of {returned} {invoice.currency} for "
                f"{invoice.number} ({entry.return_reason or 'no reason given'}). Please pay it "
                "by transfer or check your account."
            ),
            link=reverse("billing:invoices"),
            dedup_key=f"payment_return:{instruction.pk}",
            actor=actor,
        )
        return {"kind": BankTransaction.Kind.RETURN, "invoice": invoice, "fee": fee}
    return {}


@transaction.atomic
def bank_statement_import(
    *, content: bytes, actor: Actor = None, now: datetime | None = None
) -> BankStatement:
    """Import a camt.053 file of the cooperative's account; all or nothing."""
    now = now or timezone.now()
    try:
        camt = parse_camt053(content)
    except CamtError as exc:
        raise ApplicationError(f"{exc} Nothing was imported.") from exc
    own = settings.BILLING_SELLER["iban"]
    others = sorted({iban for iban in camt.ibans if iban.replace(" ", "") != own})
    if others:
        raise ApplicationError(
            f"This statement is for account {', '.join(others)}, not the cooperative's "
            f"account {own}. Nothing was imported.",
            {"iban": others},
        )
    digest = hashlib.sha256(content).hexdigest()
    previous = BankStatement.objects.filter(message_id=camt.message_id).first() or (
        BankStatement.objects.filter(sha256=digest).first()
    )
    if previous is not None:
        raise ApplicationError(
            f"This statement ({camt.message_id}) was already imported on "
            f"{previous.imported_at:%Y-%m-%d %H:%M} UTC. Nothing was imported.",
            {"message_id": camt.message_id},
        )
    statement = BankStatement.objects.create(
        message_id=camt.message_id,
        iban=own,
        sha256=digest,
        imported_at=now,
        entry_count=len(camt.entries),
    )
    for entry in camt.entries:
        if not entry.booked:
            continue  # pending entries come again, booked, in a later statement
        row: dict[str, Any] = {
            "statement": statement,
            "booking_date": entry.booking_date,
            "amount": entry.amount,
            "end_to_end_id": entry.end_to_end_id[:35],
            "reference": entry.reference[:140],
            "counterparty": entry.counterparty[:140],
        }
        matched = _match(BankTransaction(**row), entry, actor)
        # A new row: created in its status (matched or waiting), not a transition.
        BankTransaction.objects.create(
            **row,
            **matched,
            status=(
                BankTransaction.Status.MATCHED if matched else BankTransaction.Status.UNMATCHED
            ),
        )
    audit_log_write(
        event=AuditEvent.BANK_STATEMENT_IMPORTED,
        actor=actor,
        target=statement,
        details={
            "message_id": camt.message_id,
            "entries": len(camt.entries),
            "unmatched": statement.transactions.filter(
                status=BankTransaction.Status.UNMATCHED
            ).count(),
        },
    )
    return statement


@transaction.atomic
def bank_transaction_assign(
    *, transaction_id: int, invoice: Invoice, actor: Actor = None
) -> BankTransaction:
    """Staff match a waiting credit to an issued invoice (the unmatched queue)."""
    tx = bank_transaction_lock(transaction_id)
    if tx.status != BankTransaction.Status.UNMATCHED:
        raise ApplicationError("This bank entry is already matched.")
    if tx.amount <= 0 or invoice.status != Invoice.Status.ISSUED:
        raise ApplicationError("Only a credit can be matched, and only to an issued invoice.")
    matched = _payment(tx, invoice)
    tx.kind, tx.invoice = matched["kind"], matched["invoice"]
    tx.transition_to(
        BankTransaction.Status.MATCHED,
        actor=actor,
        event=AuditEvent.BANK_TRANSACTION_ASSIGNED,
        details={"invoice": invoice.number},
        update_fields=["kind", "invoice"],
    )
    return tx
