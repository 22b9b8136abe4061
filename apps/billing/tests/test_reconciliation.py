"""camt.053 import: collections, transfers, payouts and a return matched to invoices; the
ledger follows; bad files are refused with a clear message and import nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings

from apps.billing.models import BankStatement, BankTransaction, Invoice, LedgerLine, SepaFile
from apps.billing.selectors import invoice_open_amount, member_balance
from apps.billing.services import (
    bank_statement_import,
    bank_transaction_assign,
    sepa_files_create,
)
from apps.billing.tests.camt_builder import Entry, Tx, camt053
from apps.billing.tests.test_sepa import NOW, OCT, month_with
from apps.core.exceptions import ApplicationError

pytestmark = pytest.mark.django_db
OWN = settings.BILLING_SELLER["iban"]


def e2e(invoice: Invoice) -> str:
    return invoice.instructions.get().end_to_end_id


@pytest.fixture
def month():
    members = month_with([(100_000, "direct_debit"), (200_000, "direct_debit"),
                          (150_000, "direct_debit"), (0, "direct_debit"),
                          (100_000, "transfer")])  # fmt: skip
    sepa_files_create(period=OCT, now=NOW)
    return [Invoice.objects.get(member=m) for m in members]


def bank_month(inv: list[Invoice], message_id: str = "STMT-2026-11-13") -> bytes:
    collected = [inv[0], inv[1], inv[2]]
    return camt053(message_id=message_id, iban=OWN, entries=[
        Entry(sum(i.gross for i in collected), credit=True,
              txs=[Tx(i.gross, e2e(i)) for i in collected]),  # batch booking of the pain.008
        Entry(inv[2].gross + Decimal("3.00"), credit=False, txs=[
            Tx(inv[2].gross, e2e(inv[2]), return_reason="AM04", charges=Decimal("3.00"))]),
        Entry(-inv[3].gross, credit=False, txs=[Tx(-inv[3].gross, e2e(inv[3]))]),  # payout
        Entry(inv[4].gross, credit=True, txs=[Tx(inv[4].gross, ustrd=f"Rechnung {inv[4].number}")]),
        Entry(Decimal("50.00"), credit=True, txs=[Tx(Decimal("50.00"), ustrd="Mitgliedsbeitrag")]),
    ])  # fmt: skip


def test_a_bank_statement_settles_invoices_reopens_the_returned_one_and_posts_its_fee(month):
    inv = month
    statement = bank_statement_import(content=bank_month(inv), now=NOW)
    assert statement.entry_count == 7
    assert [invoice_open_amount(invoice=i) for i in inv] == [
        Decimal("0.00"), Decimal("0.00"), inv[2].gross + Decimal("3.00"), Decimal("0.00"),
        Decimal("0.00"),
    ]  # fmt: skip
    returned = BankTransaction.objects.get(kind="return")
    assert (returned.invoice, returned.fee) == (inv[2], Decimal("3.00"))
    assert inv[2].instructions.get().status == "returned"
    assert inv[3].instructions.get().status == "settled"
    # The member whose debit came back is told (a payment problem), nobody else.
    from apps.notifications.models import Notification

    (note,) = Notification.objects.filter(kind="payment_problem")
    assert (note.member, inv[2].number in note.subject) == (inv[2].member, True)
    # The unknown credit waits for staff; they match it by hand.
    (waiting,) = BankTransaction.objects.filter(status="unmatched")
    assert waiting.amount == Decimal("50.00") and waiting.reference == "Mitgliedsbeitrag"
    bank_transaction_assign(transaction_id=waiting.pk, invoice=inv[2])
    assert invoice_open_amount(invoice=inv[2]) == inv[2].gross + Decimal("3.00") - 50
    # Every entry balances; each member's balance is the sum of their documents and payments.
    assert sum(LedgerLine.objects.values_list("amount", flat=True)) == 0
    assert member_balance(member=inv[0].member) == 0


def test_a_returned_invoice_is_collected_again_with_a_new_end_to_end_id(month):
    inv = month
    first_id = e2e(inv[2])
    bank_statement_import(content=bank_month(inv), now=NOW)
    result = sepa_files_create(period=OCT, now=NOW)
    assert [(f["kind"], f["count"]) for f in result["files"]] == [("pain.008", 1)]
    again = inv[2].instructions.get(status="pending")
    assert again.end_to_end_id != first_id and again.amount == inv[2].gross
    assert SepaFile.objects.filter(kind="pain.008").count() == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"%PDF-1.7 not a statement", "not XML"),
        (b"<Document><unclosed></Document>", "not well-formed XML"),
        (b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.02">'
         b"<CstmrDrctDbtInitn/></Document>", "not a camt.053"),
    ],
)  # fmt: skip
def test_files_that_are_not_camt053_are_refused_and_import_nothing(month, content, message):
    with pytest.raises(ApplicationError, match=message) as exc:
        bank_statement_import(content=content, now=NOW)
    assert "Nothing was imported" in exc.value.message
    assert not BankStatement.objects.exists() and not BankTransaction.objects.exists()


def test_a_statement_of_another_account_is_refused(month):
    other = camt053(message_id="X-1", iban="DE02100500000054540402",
                    entries=[Entry(Decimal("1.00"), True, [Tx(Decimal("1.00"))])])  # fmt: skip
    with pytest.raises(ApplicationError, match="DE02100500000054540402, not the cooperative"):
        bank_statement_import(content=other, now=NOW)
    assert not BankStatement.objects.exists() and not BankTransaction.objects.exists()


def test_a_statement_imported_twice_is_refused_the_second_time(month):
    content = bank_month(month)
    bank_statement_import(content=content, now=NOW)
    lines = LedgerLine.objects.count()
    with pytest.raises(ApplicationError, match="already imported") as exc:
        bank_statement_import(content=content, now=NOW)
    assert "Nothing was imported" in exc.value.message
    # The same statement id in a re-exported file (different bytes) too.
    with pytest.raises(ApplicationError, match="already imported"):
        bank_statement_import(content=content.replace(b"06:00:00", b"07:00:00"), now=NOW)
    assert BankStatement.objects.count() == 1 and LedgerLine.objects.count() == lines
    assert BankTransaction.objects.count() == 7


def test_camt_import_command_reports_and_refuses_repeats(month, tmp_path):
    import json
    from io import StringIO

    from django.core.management import CommandError, call_command

    path = tmp_path / "camt053.xml"
    path.write_bytes(bank_month(month))
    out = StringIO()
    call_command("billing_camt_import", str(path), stdout=out)
    assert json.loads(out.getvalue()) == {
        "message_id": "STMT-2026-11-13", "entries": 7, "matched": 6, "unmatched": 1,
    }  # fmt: skip
    with pytest.raises(CommandError, match="already imported"):
        call_command("billing_camt_import", str(path))


def test_creditor_references_follow_iso11649_and_match_transfers(month):
    from apps.billing.invoicing import creditor_reference, number_from_creditor_reference

    reference = creditor_reference("F2026-000005")
    assert reference.startswith("RF") and reference.endswith("F2026000005")
    digits = "".join(str(int(ch, 36)) for ch in reference[4:] + reference[:4])
    assert int(digits) % 97 == 1  # ISO 7064 MOD 97-10, as for IBANs
    assert number_from_creditor_reference(reference) == "F2026-000005"
    broken = reference[:4] + "F2026000006"
    assert number_from_creditor_reference(broken) is None
    transfer_payer = month[4]
    assert transfer_payer.payment_method == "transfer"
    content = camt053(message_id="RF-1", iban=OWN, entries=[
        Entry(transfer_payer.gross, True, [Tx(transfer_payer.gross,
              creditor_reference=creditor_reference(transfer_payer.number))]),
    ])  # fmt: skip
    bank_statement_import(content=content, now=NOW)
    assert invoice_open_amount(invoice=transfer_payer) == 0
