"""Dunning: reminder levels for overdue invoices, each with a new due date and a fee (posted to
the member's account) and an e-mail. It stops as soon as the invoice is paid and never runs for
an invoice under dispute."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.billing.lock_objects import dispute_lock, invoice_lock
from apps.billing.models import Dispute, Invoice, LedgerEntry, Reminder
from apps.billing.selectors import invoice_open_amount
from apps.billing.services.ledger import Account, Posting, ledger_entry_post
from apps.billing.services.mail import document_email_after_commit
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor


@transaction.atomic
def dispute_open(
    *, invoice: Invoice, reason: str, actor: Actor = None, now: datetime | None = None
) -> Dispute:
    if invoice.disputes.filter(closed_at__isnull=True).exists():
        raise ApplicationError("This invoice is already disputed.", {"invoice": invoice.number})
    dispute = Dispute.objects.create(
        invoice=invoice, reason=reason, opened_at=now or timezone.now()
    )
    audit_log_write(event=AuditEvent.DISPUTE_OPENED, actor=actor, target=dispute,
                    details={"invoice": invoice.number, "reason": reason})  # fmt: skip
    return dispute


@transaction.atomic
def dispute_close(*, dispute: Dispute, actor: Actor = None, now: datetime | None = None) -> Dispute:
    dispute = dispute_lock(dispute.pk)
    if dispute.closed_at is not None:
        raise ApplicationError("This dispute is already closed.")
    dispute.closed_at = now or timezone.now()
    dispute.save(update_fields=["closed_at"])
    audit_log_write(event=AuditEvent.DISPUTE_CLOSED, actor=actor, target=dispute, details={})
    return dispute


def _fees() -> list[Decimal]:
    return [Decimal(str(fee)) for fee in settings.BILLING_DUNNING_FEES]


@transaction.atomic
def reminder_send(*, invoice: Invoice, today: date, actor: Actor = None) -> Reminder | None:
    """The next reminder for `invoice` if it is overdue, unpaid and not disputed; else None."""
    invoice = invoice_lock(invoice.pk)
    if invoice.status != Invoice.Status.ISSUED or invoice.kind == Invoice.Kind.CREDIT_NOTE:
        return None
    if invoice.corrections.filter(kind=Invoice.Kind.CREDIT_NOTE).exists():
        return None  # annulled
    if invoice.disputes.filter(closed_at__isnull=True).exists():
        return None
    if invoice_open_amount(invoice=invoice) <= 0:
        return None
    last = invoice.reminders.order_by("-level").first()
    due = last.due_date if last is not None else invoice.due_date
    level = (last.level if last is not None else 0) + 1
    fees = _fees()
    if due is None or today <= due or level > len(fees):
        return None
    reminder = Reminder.objects.create(
        invoice=invoice,
        level=level,
        sent_on=today,
        due_date=today + timedelta(days=settings.BILLING_REMINDER_TERM_DAYS),
        fee=fees[level - 1],
    )
    if reminder.fee:
        ledger_entry_post(
            kind=LedgerEntry.Kind.DUNNING_FEE,
            booked_on=today,
            description=f"Reminder {level} fee {invoice.number}",
            postings=[
                Posting(Account.RECEIVABLE, reminder.fee, invoice.member_id, invoice.pk),
                Posting(Account.FEES, -reminder.fee),
            ],
        )
    audit_log_write(event=AuditEvent.REMINDER_SENT, actor=actor, target=reminder,
                    details={"invoice": invoice.number, "level": level,
                             "fee": str(reminder.fee)})  # fmt: skip
    document_email_after_commit(invoice_id=invoice.pk, reminder_id=reminder.pk)
    return reminder


def dunning_run(*, today: date, actor: Actor = None) -> list[Reminder]:
    """Send every reminder due today (one transaction per invoice)."""
    candidates = Invoice.objects.filter(
        status=Invoice.Status.ISSUED,
        kind__in=[Invoice.Kind.INVOICE, Invoice.Kind.RECTIFYING, Invoice.Kind.SHARE_CAPITAL],
        due_date__lt=today,
    ).order_by("id")
    sent = []
    for invoice in candidates:
        reminder = reminder_send(invoice=invoice, today=today, actor=actor)
        if reminder is not None:
            sent.append(reminder)
    return sent
