"""Portal pages: members see their own issued invoices, PDF and account (others' are 404); staff
pages refuse non-staff and refuse changes by auditors; camt upload and billing actions work."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.accounts.tests.factories import StaffUserFactory
from apps.billing.models import BankStatement, BankTransaction, BillingRun, Invoice
from apps.billing.services import invoice_issue
from apps.billing.tests.camt_builder import Entry, Tx, camt053
from apps.billing.tests.test_invoices import NOW, bill_october
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued():
    return invoice_issue(invoice=bill_october(1)[0], actor=None, now=NOW)


def test_a_member_sees_their_invoices_account_and_pdf(client, issued):
    client.force_login(issued.member.user)
    html = client.get(reverse("billing:invoices")).content.decode()
    assert issued.number in html and "59.86" in html
    assert "Account balance: <strong>59.86</strong> (you owe)" in html
    assert f"Invoice {issued.number}" in html  # the ledger booking
    response = client.get(reverse("billing:invoice_pdf", args=[issued.pk]))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")


def test_another_members_invoice_is_not_found(member_client, issued):
    assert member_client.get(reverse("billing:invoice_pdf", args=[issued.pk])).status_code == 404
    assert issued.number not in member_client.get(reverse("billing:invoices")).content.decode()


@pytest.mark.parametrize(
    "name", ["billing:staff_runs", "billing:staff_bank", "billing:staff_aging"]
)
def test_staff_pages_refuse_members_and_open_for_staff_with_mfa(member_client, name):
    assert member_client.get(reverse(name)).status_code == 403
    staff = Client()
    staff.force_login(StaffUserFactory())
    assert staff.get(reverse(name)).status_code == 403  # staff without MFA are refused
    login_with_mfa(staff, StaffUserFactory())
    assert staff.get(reverse(name)).status_code == 200


def test_auditors_may_look_but_not_change(auditor_client, issued):
    page = auditor_client.get(reverse("billing:staff_runs"))
    assert page.status_code == 200 and 'id="billing-actions"' not in page.content.decode()
    assert (
        'id="camt-import"' not in auditor_client.get(reverse("billing:staff_bank")).content.decode()
    )
    response = auditor_client.post(reverse("billing:staff_runs"),
                                   {"period": "2026-10", "action": "run"})  # fmt: skip
    assert response.status_code == 403
    upload = SimpleUploadedFile("s.xml", b"<x/>", "application/xml")
    assert auditor_client.post(reverse("billing:staff_bank"),
                               {"statement": upload}).status_code == 403  # fmt: skip


def test_staff_run_billing_and_import_a_statement_from_the_pages(staff_client, issued):
    response = staff_client.post(reverse("billing:staff_runs"),
                                 {"period": "2026-10", "action": "run"}, follow=True)  # fmt: skip
    assert "Billing run 2026-10: 1 invoices, gross 59.86" in response.content.decode()
    assert BillingRun.objects.get().summary["invoices"] == 1
    bad = SimpleUploadedFile("s.xml", b"not xml at all", "application/xml")
    response = staff_client.post(reverse("billing:staff_bank"), {"statement": bad}, follow=True)
    assert "This file is not XML" in response.content.decode()
    assert not BankStatement.objects.exists()
    good = camt053(message_id="S-9", iban=settings.BILLING_SELLER["iban"], entries=[
        Entry(Decimal("59.86"), True, [Tx(Decimal("59.86"), ustrd=issued.number)]),
        Entry(Decimal("7.00"), True, [Tx(Decimal("7.00"), ustrd="donation")]),
    ])  # fmt: skip
    response = staff_client.post(reverse("billing:staff_bank"),
                                 {"statement": SimpleUploadedFile("s.xml", good)},
                                 follow=True)  # fmt: skip
    html = response.content.decode()
    assert "Statement S-9 imported: 2 entries." in html and "donation" in html
    waiting = BankTransaction.objects.get(status="unmatched")
    staff_client.post(reverse("billing:staff_bank_assign", args=[waiting.pk]),
                      {"invoice": issued.number})  # fmt: skip
    waiting.refresh_from_db()
    assert waiting.status == "matched" and waiting.invoice == issued
    aging = staff_client.get(reverse("billing:staff_aging")).content.decode()
    assert "Nothing is open." in aging  # overpaid by 7.00: nothing left to collect
    assert Invoice.objects.count() == 1


@pytest.mark.parametrize(
    "model",
    ["invoice", "supplycontract", "supplytariff", "billingrun", "mandate", "sepafile",
     "paymentinstruction", "bankstatement", "banktransaction", "ledgerentry", "reminder",
     "dispute"],
)  # fmt: skip
def test_admin_lists_open_for_a_superuser(client, issued, model):
    from tests.fixtures.core import login_with_mfa

    admin_user = StaffUserFactory(is_superuser=True)
    login_with_mfa(client, admin_user)
    assert client.get(reverse(f"admin:billing_{model}_changelist")).status_code == 200


def test_admin_marks_an_invoice_disputed(client, issued):
    from tests.fixtures.core import login_with_mfa

    login_with_mfa(client, StaffUserFactory(is_superuser=True))
    client.post(reverse("admin:billing_invoice_changelist"),
                {"action": "dispute", "_selected_action": [issued.pk]})  # fmt: skip
    assert issued.disputes.get().closed_at is None


def test_the_billing_page_lists_members_settled_without_a_contract(staff_client, issued):
    from apps.accounts.tests.factories import MemberFactory
    from apps.billing.tests.factories import settled

    stranger = MemberFactory()
    settled(stranger, datetime(2026, 10, 12, tzinfo=UTC), bought_wh=1_000, p2p_purchase="0.20")
    response = staff_client.post(reverse("billing:staff_runs"),
                                 {"period": "2026-10", "action": "run"}, follow=True)  # fmt: skip
    html = response.content.decode()
    assert (
        f"Settled energy but no supply contract (not invoiced): {stranger.membership_number}."
        in html
    )
    cell = html.split('class="without-contract">')[1].split("</td>")[0]
    assert cell == stranger.membership_number
