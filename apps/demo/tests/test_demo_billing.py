"""The demo cooperative's billed month, end to end (docs/billing.md): billing run → gap-free
invoices → pain.008 equal to the direct-debit invoices → a camt.053 with payments and one return
→ paid/unpaid and the fee → a reminder e-mailed for the returned invoice → a credit note and a
rectifying invoice for one member → every member's ledger balance equals their documents,
payments, returns and fees."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from lxml import etree

from apps.billing.models import (
    BankStatement,
    BankTransaction,
    Invoice,
    PaymentInstruction,
    Reminder,
    SepaFile,
)
from apps.billing.selectors import invoice_open_amount, member_balance
from apps.billing.services import (
    dunning_run,
    invoice_issue,
    invoice_rectify,
    invoice_review,
)
from apps.billing.tests.factories import settled
from apps.demo import loader
from apps.demo.hooks import billing as billing_hook
from apps.market.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 9, 7, tzinfo=UTC)
OCT = date(2026, 10, 1)


@pytest.fixture
def context():
    context = loader.demo_cooperative_load(
        now=NOW, history_days=0.25, signed_days=0.125, run_hooks=False
    ).context
    TariffFactory()
    for k, member in enumerate(context.members[:6]):  # some settled October energy
        settled(member, datetime(2026, 10, 14, 11, tzinfo=UTC), grid_import_wh=80_000 + k,
                bought_wh=20_000, p2p_purchase="4.10", network_fee="0.20",
                grid_export_wh=3_000 * k)  # fmt: skip
    return context


def test_the_demo_month_goes_around_the_whole_money_loop(
    context, django_capture_on_commit_callbacks, mailoutbox
):
    billing_hook.load(context)
    members = context.members
    invoices = list(Invoice.objects.filter(period=OCT, kind="invoice").order_by("number"))
    assert len(invoices) == len(members) == 118
    assert [i.number for i in invoices] == [f"F2026-{n:06d}" for n in range(1, 119)]

    collection = SepaFile.objects.get(kind="pain.008")
    debit_total = sum(i.gross for i in invoices
                      if i.payment_method == "direct_debit" and i.gross > 0)  # fmt: skip
    assert collection.total == debit_total
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}
    root = etree.fromstring(collection.content.encode())
    assert Decimal(root.findtext("p:CstmrDrctDbtInitn/p:GrpHdr/p:CtrlSum", namespaces=ns)) == (
        debit_total
    )

    (returned_tx,) = BankTransaction.objects.filter(kind="return")
    returned = returned_tx.invoice
    assert returned_tx.fee == Decimal("3.00")
    assert invoice_open_amount(invoice=returned) == returned.gross + Decimal("3.00")
    for instruction in PaymentInstruction.objects.exclude(invoice=returned):
        assert instruction.status == "settled"
        assert invoice_open_amount(invoice=instruction.invoice) == 0

    with django_capture_on_commit_callbacks(execute=True):
        reminders = dunning_run(today=returned.due_date + timedelta(days=1))
    reminded = {r.invoice_id for r in reminders}
    assert returned.pk in reminded
    assert not reminded & set(
        PaymentInstruction.objects.filter(status="settled").values_list("invoice_id", flat=True)
    )
    assert f"Payment reminder 1: {returned.number}" in [m.subject for m in mailoutbox]

    showcase = Invoice.objects.get(member=context.showcase_member, kind="invoice")
    credit, rectifying = invoice_rectify(invoice=showcase, actor=None, reason="meter swap",
                                         now=NOW)  # fmt: skip
    rectifying = invoice_issue(invoice=invoice_review(invoice=rectifying, actor=None), actor=None,
                               now=NOW)  # fmt: skip
    assert (credit.number, rectifying.number) == ("A2026-000001", "R2026-000001")

    # Every member's balance = documents − payments + returns and fees + reminder fees.
    expected: dict[int, Decimal] = defaultdict(Decimal)
    for doc in Invoice.objects.filter(status="issued"):
        expected[doc.member_id] += doc.gross
    for tx in BankTransaction.objects.filter(status="matched").select_related("invoice"):
        if tx.kind == "return":
            expected[tx.invoice.member_id] += -tx.amount  # returned amount plus fee
        else:
            expected[tx.invoice.member_id] -= tx.amount
    for reminder in Reminder.objects.select_related("invoice"):
        expected[reminder.invoice.member_id] += reminder.fee
    for member in members:
        assert member_balance(member=member) == expected[member.pk], member.membership_number

    # The demo step is idempotent.
    counts = (Invoice.objects.count(), SepaFile.objects.count(), BankStatement.objects.count())
    billing_hook.load(context)
    assert (Invoice.objects.count(), SepaFile.objects.count(),
            BankStatement.objects.count()) == counts  # fmt: skip
