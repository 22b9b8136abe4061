"""E-mail of issued documents with their PDF, and dunning: levels with due dates and fees,
stopping on payment, never for a disputed invoice."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from apps.billing.models import DocumentEmail, Invoice
from apps.billing.selectors import invoice_open_amount, member_balance
from apps.billing.services import (
    bank_statement_import,
    dispute_close,
    dispute_open,
    dunning_run,
    invoice_credit,
    invoice_issue,
)
from apps.billing.tests.camt_builder import Entry, Tx, camt053
from apps.billing.tests.test_invoices import NOW, bill_october

pytestmark = pytest.mark.django_db


def issue_one(capture) -> Invoice:
    invoice = bill_october(1)[0]
    with capture(execute=True):
        return invoice_issue(invoice=invoice, actor=None, now=NOW)


def test_an_issued_invoice_is_emailed_with_its_pdf(django_capture_on_commit_callbacks, mailoutbox):
    invoice = issue_one(django_capture_on_commit_callbacks)
    (mail,) = mailoutbox
    assert mail.to == [invoice.member.user.email]
    assert mail.subject == f"Invoice {invoice.number}"
    assert "59.86 EUR" in mail.body and "direct debit" in mail.body
    ((name, content, mimetype),) = mail.attachments
    assert (name, mimetype) == (f"{invoice.number}.pdf", "application/pdf")
    assert content.startswith(b"%PDF")
    assert DocumentEmail.objects.get().invoice == invoice
    # The portal inbox tells the member too, without a second e-mail (the one above has the PDF).
    from apps.notifications.models import Notification

    note = Notification.objects.get(member=invoice.member)
    assert note.kind == "statement" and invoice.number in note.subject
    assert not note.deliveries.filter(channel="email").exists()
    with django_capture_on_commit_callbacks(execute=True):
        credit = invoice_credit(invoice=invoice, actor=None, reason="moved", now=NOW)
    assert mailoutbox[1].subject == f"Credit note {credit.number}"
    assert f"annulling {invoice.number}" in mailoutbox[1].body


def test_reminders_escalate_with_due_dates_and_fees_and_stop_on_payment(
    django_capture_on_commit_callbacks, mailoutbox, settings
):
    invoice = issue_one(django_capture_on_commit_callbacks)  # due 2026-11-19
    mailoutbox.clear()
    assert dunning_run(today=date(2026, 11, 19)) == []  # not overdue yet
    with django_capture_on_commit_callbacks(execute=True):
        (first,) = dunning_run(today=date(2026, 11, 20))
    assert (first.level, first.fee, first.due_date) == (1, Decimal("0.00"), date(2026, 11, 30))
    assert mailoutbox[0].subject == f"Payment reminder 1: {invoice.number}"
    assert "Please pay by 2026-11-30" in mailoutbox[0].body
    assert mailoutbox[0].attachments[0][0] == f"{invoice.number}.pdf"
    assert dunning_run(today=date(2026, 11, 25)) == []  # the reminder's own term runs
    (second,) = dunning_run(today=date(2026, 12, 1))
    assert (second.level, second.fee) == (2, Decimal("5.00"))
    assert invoice_open_amount(invoice=invoice) == Decimal("64.86")  # fee on the account
    # Paid (with the fee): no further reminder.
    bank_statement_import(content=camt053(message_id="S-1", iban=settings.BILLING_SELLER["iban"],
        entries=[Entry(Decimal("64.86"), True, [Tx(Decimal("64.86"),
                 ustrd=f"{invoice.number}")])]), now=NOW)  # fmt: skip
    assert invoice_open_amount(invoice=invoice) == 0 and member_balance(member=invoice.member) == 0
    assert dunning_run(today=date(2026, 12, 30)) == []


def test_no_reminder_for_a_disputed_invoice(django_capture_on_commit_callbacks):
    invoice = issue_one(django_capture_on_commit_callbacks)
    dispute = dispute_open(invoice=invoice, reason="meter reading looks wrong")
    assert dunning_run(today=date(2026, 12, 20)) == []
    dispute_close(dispute=dispute)
    assert [r.level for r in dunning_run(today=date(2026, 12, 20))] == [1]


def test_no_reminder_for_an_annulled_invoice(django_capture_on_commit_callbacks):
    invoice = issue_one(django_capture_on_commit_callbacks)
    invoice_credit(invoice=invoice, actor=None, reason="void", now=NOW)
    assert dunning_run(today=date(2026, 12, 20)) == []
