"""E-mail of invoices, credit notes and reminders with the document's PDF attached.

Sending happens after the issuing transaction commits: by a Celery worker
(`document_email_task`, which renders the PDF) or, with BILLING_EMAIL_ENQUEUE off, in-process.
Every sent e-mail is recorded (DocumentEmail) and listed in the member's portal.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from apps.billing.documents import invoice_pdf
from apps.billing.invoicing import creditor_reference
from apps.billing.models import DocumentEmail, Invoice, Reminder


def document_email_send(*, invoice_id: int, reminder_id: int | None = None) -> DocumentEmail:
    """Send one document (or a reminder about it) to the member, PDF attached."""
    invoice = Invoice.objects.select_related("member__user", "original").get(pk=invoice_id)
    reminder = Reminder.objects.get(pk=reminder_id) if reminder_id else None
    to = invoice.member.user.email
    if reminder is not None:
        subject = f"Payment reminder {reminder.level}: {invoice.number}"
    else:
        subject = f"{invoice.get_kind_display()} {invoice.number}"
    body = render_to_string(
        "billing/email_document.txt",
        {
            "invoice": invoice,
            "reminder": reminder,
            "member": invoice.member,
            "creditor_reference": creditor_reference(invoice.number),
        },
    )
    message = EmailMessage(subject=subject, body=body, to=[to])
    message.attach(f"{invoice.number}.pdf", invoice_pdf(invoice=invoice), "application/pdf")
    message.send()
    return DocumentEmail.objects.create(
        invoice=invoice, reminder=reminder, to=to, subject=subject, sent_at=timezone.now()
    )


def document_email_after_commit(*, invoice_id: int, reminder_id: int | None = None) -> None:
    """Queue the e-mail for when the current transaction commits (never for a rolled-back one)."""

    def send() -> None:
        if settings.BILLING_EMAIL_ENQUEUE:
            from apps.billing.tasks import document_email_task

            document_email_task.delay(invoice_id, reminder_id)
        else:
            document_email_send(invoice_id=invoice_id, reminder_id=reminder_id)

    transaction.on_commit(send)
