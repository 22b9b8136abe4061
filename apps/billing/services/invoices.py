"""Invoice pipeline (draft → reviewed → issued), gap-free numbering, credit notes and rectifying
invoices. Issued documents are never edited: a credit note annuls one, a rectifying invoice
replaces it; both reference the original."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.billing import invoicing
from apps.billing.lock_objects import invoice_lock, invoice_sequence_lock
from apps.billing.models import Invoice
from apps.billing.selectors import contracts_active, invoice_lines_compute, month_days
from apps.billing.services.ledger import ledger_document_post
from apps.billing.services.mail import document_email_after_commit
from apps.billing.services.runs import invoice_lines_write
from apps.core.exceptions import ApplicationError
from apps.core.state import check_transition
from apps.core.types import Actor
from apps.market.models import Statement
from apps.market.selectors import member_statement_for_month
from apps.market.services import statement_issue, statement_review
from apps.notifications.models import Channel as NotificationChannel
from apps.notifications.models import Kind as NotificationKind
from apps.notifications.services import notify

SERIES_PREFIX: dict[str, str] = {
    Invoice.Kind.INVOICE: "F",
    Invoice.Kind.CREDIT_NOTE: "A",
    Invoice.Kind.RECTIFYING: "R",
    Invoice.Kind.SHARE_CAPITAL: "S",
}


def _local_date(at: datetime) -> date:
    return at.astimezone(ZoneInfo(settings.COOPERATIVE_TIME_ZONE)).date()


def _next_number(*, series: str) -> int:
    """The next number of `series`. The counter row stays locked until the issuing transaction
    ends, so concurrent issuers queue and a rolled-back issue leaves no gap."""
    sequence = invoice_sequence_lock(series)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return sequence.last_number


@transaction.atomic
def invoice_review(*, invoice: Invoice, actor: Actor) -> Invoice:
    invoice = invoice_lock(invoice.pk)
    invoice.reviewed_by = actor if isinstance(actor, User) else None
    invoice.transition_to(
        Invoice.Status.REVIEWED,
        actor=actor,
        event=AuditEvent.INVOICE_REVIEWED,
        update_fields=["reviewed_by"],
    )
    return invoice


def _statement_issue(*, invoice: Invoice, actor: Actor, now: datetime) -> None:
    """Issue the market statement a regular invoice bills, so later corrections of that month
    go on the next statement (and the next invoice) instead of rewriting this one."""
    statement = member_statement_for_month(member=invoice.member, month=invoice.period)
    if statement is None or statement.pk != invoice.statement_id:
        return
    if statement.status == Statement.Status.DRAFT:
        statement = statement_review(statement=statement, actor=actor)
    if statement.status == Statement.Status.REVIEWED:
        # The invoice's own notification tells the member about both.
        statement_issue(statement=statement, actor=actor, now=now, notify_member=False)


@transaction.atomic
def invoice_issue(*, invoice: Invoice, actor: Actor, now: datetime | None = None) -> Invoice:
    """Issue a reviewed document: the next number of its series, issue and due dates."""
    now = now or timezone.now()
    invoice = invoice_lock(invoice.pk)
    check_transition(Invoice.TRANSITIONS, invoice.status, Invoice.Status.ISSUED)
    issue_date = _local_date(now)
    invoice.series = f"{SERIES_PREFIX[invoice.kind]}{issue_date.year}"
    invoice.number = f"{invoice.series}-{_next_number(series=invoice.series):06d}"
    invoice.issued_at = now
    invoice.issue_date = issue_date
    invoice.due_date = issue_date + timedelta(days=settings.BILLING_PAYMENT_TERM_DAYS)
    invoice.transition_to(
        Invoice.Status.ISSUED,
        actor=actor,
        event=AuditEvent.INVOICE_ISSUED,
        details={"number": invoice.number, "kind": invoice.kind, "gross": str(invoice.gross)},
        update_fields=["series", "number", "issued_at", "issue_date", "due_date"],
    )
    if invoice.kind == Invoice.Kind.INVOICE:
        _statement_issue(invoice=invoice, actor=actor, now=now)
    ledger_document_post(invoice=invoice)
    document_email_after_commit(invoice_id=invoice.pk)
    notify(
        member=invoice.member,
        kind=NotificationKind.STATEMENT,
        subject=f"{invoice.get_kind_display()} {invoice.number}",
        body=f"Total {invoice.gross} {invoice.currency}, due {invoice.due_date:%Y-%m-%d}.",
        link=reverse("billing:invoices"),
        dedup_key=f"invoice:{invoice.pk}",
        # The document itself is e-mailed with its PDF (document_email_after_commit).
        exclude_channels=frozenset({NotificationChannel.EMAIL}),
        actor=actor,
    )
    return invoice


def invoices_review(*, period: date, actor: Actor) -> int:
    """Review every draft of the month; returns how many."""
    drafts = Invoice.objects.filter(period=period, status=Invoice.Status.DRAFT).order_by("id")
    count = 0
    for invoice in drafts:
        invoice_review(invoice=invoice, actor=actor)
        count += 1
    return count


def invoices_issue(*, period: date, actor: Actor, now: datetime | None = None) -> int:
    """Issue every reviewed document of the month in member order; returns how many."""
    reviewed = Invoice.objects.filter(period=period, status=Invoice.Status.REVIEWED).order_by(
        "member_id", "id"
    )
    count = 0
    for invoice in reviewed:
        invoice_issue(invoice=invoice, actor=actor, now=now)
        count += 1
    return count


def _annul(*, original: Invoice, actor: Actor, reason: str, now: datetime) -> Invoice:
    if original.status != Invoice.Status.ISSUED:
        raise ApplicationError("Only an issued invoice can be corrected; edit the draft instead.")
    if original.kind == Invoice.Kind.CREDIT_NOTE:
        raise ApplicationError("A credit note cannot be annulled.", {"invoice": original.number})
    if original.corrections.filter(kind=Invoice.Kind.CREDIT_NOTE).exists():
        raise ApplicationError(
            "This invoice is already annulled by a credit note.", {"invoice": original.number}
        )
    if not reason.strip():
        raise ApplicationError("A correction needs a reason.")
    credit = Invoice.objects.create(
        member=original.member,
        period=original.period,
        kind=Invoice.Kind.CREDIT_NOTE,
        original=original,
        statement_id=original.statement_id,
        reason=reason,
        currency=original.currency,
        payment_method=original.payment_method,
    )
    lines = [
        invoicing.Line(
            kind=line.kind,
            description=line.description,
            quantity=-line.quantity,
            unit=line.unit,
            unit_price=line.unit_price,
            net=-line.net,
            vat_rate=line.vat_rate,
            is_adjustment=line.is_adjustment,
        )
        for line in original.lines.order_by("position")
    ]
    invoice_lines_write(invoice=credit, lines=lines)
    credit = invoice_review(invoice=credit, actor=actor)
    return invoice_issue(invoice=credit, actor=actor, now=now)


@transaction.atomic
def invoice_credit(
    *, invoice: Invoice, actor: Actor, reason: str, now: datetime | None = None
) -> Invoice:
    """Annul an issued invoice with an issued credit note of the opposite amounts."""
    now = now or timezone.now()
    original = invoice_lock(invoice.pk)
    credit = _annul(original=original, actor=actor, reason=reason, now=now)
    audit_log_write(
        event=AuditEvent.INVOICE_CREDITED,
        actor=actor,
        target=original,
        details={"credit_note": credit.number, "reason": reason},
    )
    return credit


@transaction.atomic
def invoice_rectify(
    *, invoice: Invoice, actor: Actor, reason: str, now: datetime | None = None
) -> tuple[Invoice, Invoice]:
    """Annul an issued invoice (credit note) and draft its replacement, recomputed from the same
    settlement with today's contracts and tariffs. The draft is reviewed and issued as usual."""
    now = now or timezone.now()
    original = invoice_lock(invoice.pk)
    credit = _annul(original=original, actor=actor, reason=reason, now=now)
    first, last, _ = month_days(original.period)
    contracts = [
        c for c in contracts_active(first=first, last=last) if c.member_id == original.member_id
    ]
    if not contracts:
        raise ApplicationError("The member has no supply contract in that month.")
    statement = member_statement_for_month(member=original.member, month=original.period)
    if statement is not None and statement.pk != original.statement_id:
        statement = None
    rectifying = Invoice.objects.create(
        member=original.member,
        period=original.period,
        kind=Invoice.Kind.RECTIFYING,
        original=original,
        statement_id=original.statement_id,
        reason=reason,
        currency=original.currency,
        payment_method=contracts[0].payment_method,
    )
    lines = invoice_lines_compute(
        member=original.member, period=original.period, contracts=contracts, statement=statement
    )
    invoice_lines_write(invoice=rectifying, lines=lines)
    audit_log_write(
        event=AuditEvent.INVOICE_RECTIFIED,
        actor=actor,
        target=original,
        details={"credit_note": credit.number, "rectifying_id": rectifying.pk, "reason": reason},
    )
    return credit, rectifying
