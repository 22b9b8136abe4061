"""Member-isolation cases of billing (collected by tests/test_member_isolation.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.urls import reverse

from apps.accounts.testing import IsolationCase
from apps.billing.models import Invoice
from apps.billing.services import billing_run, invoice_issue, invoice_review
from apps.billing.tests.factories import SupplyContractFactory, SupplyTariffVersionFactory
from apps.market.tests.factories import TariffFactory

NOW = datetime(2026, 11, 5, 8, tzinfo=UTC)


def _invoice_pdf(member):
    TariffFactory()
    SupplyContractFactory(member=member, tariff=SupplyTariffVersionFactory().tariff)
    billing_run(period="2026-10", now=NOW)
    invoice = Invoice.objects.get(member=member)
    invoice = invoice_issue(invoice=invoice_review(invoice=invoice, actor=None), actor=None,
                            now=NOW)  # fmt: skip
    return reverse("billing:invoice_pdf", args=[invoice.pk])


ISOLATION_CASES = [IsolationCase("billing:invoice_pdf", _invoice_pdf)]
ISOLATION_EXEMPT = {
    "billing:sepa_file": "staff only (download a SEPA file)",
    "billing:staff_bank_assign": "staff only (match a bank entry to an invoice)",
}
