"""Row locks of the billing app (see apps/core/locks.py).

A billing or SEPA file run locks its month's BillingRun first (one run per month at once), then
invoices one at a time; issuing locks the invoice before its series counter, so issuers queue
on the counter and a rolled-back issue leaves no gap in the numbers.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Q

from apps.accounts.models import Member
from apps.billing.models import (
    BankTransaction,
    BillingRun,
    Dispute,
    Invoice,
    InvoiceSequence,
    JoinApplication,
    Mandate,
    PaymentInstruction,
    SupplyContract,
)
from apps.core.locks import lock_first, lock_or_create, lock_row, lock_rows


def billing_run_lock(*, period: date, now: datetime) -> BillingRun:
    """The run of the month `period` (first day), created when there is none yet."""
    run, _ = lock_or_create(BillingRun.objects.all(), period=period, defaults={"started_at": now})
    return run


def invoice_lock(invoice_id: int) -> Invoice:
    return lock_row(Invoice.objects.all(), invoice_id)


def invoice_sequence_lock(series: str) -> InvoiceSequence:
    """The counter of `series`, created at 0 when the series is new."""
    InvoiceSequence.objects.bulk_create([InvoiceSequence(series=series)], ignore_conflicts=True)
    sequence = lock_first(InvoiceSequence.objects.filter(series=series))
    if sequence is None:  # pragma: no cover - created just above
        raise InvoiceSequence.DoesNotExist(series)
    return sequence


def mandate_lock(mandate_id: int) -> Mandate:
    return lock_row(Mandate.objects.all(), mandate_id)


def member_active_mandate_lock(*, member: Member) -> Mandate | None:
    """The member's active mandate (at most one), or None."""
    return lock_first(Mandate.objects.filter(member=member, status=Mandate.Status.ACTIVE))


def payment_instruction_lock(end_to_end_id: str) -> PaymentInstruction | None:
    """The instruction with this end-to-end id (with its invoice and file), or None."""
    return lock_first(
        PaymentInstruction.objects.select_related("invoice", "sepa_file").filter(
            end_to_end_id=end_to_end_id
        )
    )


def bank_transaction_lock(transaction_id: int) -> BankTransaction:
    return lock_row(BankTransaction.objects.all(), transaction_id)


def dispute_lock(dispute_id: int) -> Dispute:
    return lock_row(Dispute.objects.all(), dispute_id)


def period_invoices_lock(*, period: date) -> list[Invoice]:
    """Every regular invoice of the month `period` (first day), in primary-key order: a billing
    run refreshes the drafts among them."""
    return lock_rows(Invoice.objects.filter(period=period, kind=Invoice.Kind.INVOICE))


def join_application_lock(application_id: int) -> JoinApplication:
    return lock_row(JoinApplication.objects.all(), application_id)


def member_open_contracts_lock(*, member: Member, last_day: date) -> list[SupplyContract]:
    """The member's contracts still supplying after `last_day` (open-ended or ending later)."""
    return lock_rows(
        SupplyContract.objects.filter(member=member).exclude(end__isnull=False, end__lte=last_day)
    )


def site_contracts_lock(*, member_id: int, connection_point_id: int) -> list[SupplyContract]:
    """A member's supply contracts at one site, and those linked to no site (a move ends the
    running one)."""
    return lock_rows(
        SupplyContract.objects.filter(member_id=member_id).filter(
            Q(connection_point_id=connection_point_id) | Q(connection_point__isnull=True)
        )
    )
