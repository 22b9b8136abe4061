"""Issuing: gap-free numbers per series (also under concurrency), issued documents never
edited, credit notes and rectifying invoices referencing the original."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction

from apps.billing.models import Invoice
from apps.billing.services import (
    billing_run,
    invoice_credit,
    invoice_issue,
    invoice_rectify,
    invoice_review,
    invoices_issue,
    invoices_review,
)
from apps.billing.services.runs import invoice_lines_write
from apps.billing.tests.factories import (
    SupplyContractFactory,
    SupplyTariffVersionFactory,
    settled,
)
from apps.core.exceptions import ApplicationError, InvalidTransition
from apps.market.models import Statement
from apps.market.tests.factories import TariffFactory

NOW = datetime(2026, 11, 5, 8, tzinfo=UTC)
OCT = date(2026, 10, 1)


def bill_october(members: int) -> list[Invoice]:
    TariffFactory()
    version = SupplyTariffVersionFactory()
    for _ in range(members):
        contract = SupplyContractFactory(tariff=version.tariff)
        settled(contract.member, datetime(2026, 10, 9, tzinfo=UTC), grid_import_wh=100_000)
    billing_run(period="2026-10", now=NOW)
    invoices_review(period=OCT, actor=None)
    return list(Invoice.objects.filter(period=OCT).order_by("member_id"))


@pytest.mark.django_db
def test_issuing_numbers_invoices_in_sequence_and_issues_their_statements():
    invoices_issue(period=bill_october(3)[0].period, actor=None, now=NOW)
    numbers = list(Invoice.objects.order_by("member_id").values_list("number", flat=True))
    assert numbers == ["F2026-000001", "F2026-000002", "F2026-000003"]
    invoice = Invoice.objects.order_by("member_id").first()
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 11, 5), date(2026, 11, 19))
    assert set(Statement.objects.values_list("status", flat=True)) == {"issued"}


@pytest.mark.django_db
def test_drafts_must_be_reviewed_and_issued_documents_are_never_edited():
    draft = bill_october(1)[0]
    draft.transition_to(Invoice.Status.DRAFT, actor=None)  # reviewed -> back to draft
    with pytest.raises(InvalidTransition):
        invoice_issue(invoice=draft, actor=None, now=NOW)
    issued = invoice_issue(invoice=invoice_review(invoice=draft, actor=None), actor=None, now=NOW)
    with pytest.raises(ApplicationError, match="never edited"):
        invoice_lines_write(invoice=issued, lines=[])
    with pytest.raises(InvalidTransition):
        invoice_review(invoice=issued, actor=None)


@pytest.mark.django_db(transaction=True)
def test_concurrent_issuing_gives_gap_free_unique_numbers():
    invoices = bill_october(8)
    barrier = threading.Barrier(len(invoices))
    errors: list[Exception] = []

    def issue(invoice: Invoice, fail: bool) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                invoice_issue(invoice=invoice, actor=None, now=NOW)
                if fail:  # e.g. the PDF step fails after the number was drawn
                    raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=issue, args=(invoice, k == 3)) for k, invoice in enumerate(invoices)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    numbers = sorted(Invoice.objects.filter(status="issued").values_list("number", flat=True))
    assert numbers == [f"F2026-{n:06d}" for n in range(1, 8)]  # 7 issued, no gap, no duplicate
    assert Invoice.objects.filter(status="reviewed", number="").count() == 1
    # The one rolled back is issued next and takes the next number.
    last = Invoice.objects.get(status="reviewed")
    assert invoice_issue(invoice=last, actor=None, now=NOW).number == "F2026-000008"


@pytest.mark.django_db
def test_a_credit_note_annuls_an_issued_invoice_once():
    invoice = invoice_issue(invoice=bill_october(1)[0], actor=None, now=NOW)
    credit = invoice_credit(invoice=invoice, actor=None, reason="moved out", now=NOW)
    assert (credit.kind, credit.status, credit.number) == ("credit_note", "issued", "A2026-000001")
    assert credit.original == invoice and credit.reason == "moved out"
    assert (credit.net, credit.vat, credit.gross) == (-invoice.net, -invoice.vat, -invoice.gross)
    assert sorted(line.net for line in credit.lines.all()) == sorted(
        -line.net for line in invoice.lines.all()
    )
    with pytest.raises(ApplicationError, match="already annulled"):
        invoice_credit(invoice=invoice, actor=None, reason="again", now=NOW)
    with pytest.raises(ApplicationError, match="cannot be annulled"):
        invoice_credit(invoice=credit, actor=None, reason="no", now=NOW)
    invoice.refresh_from_db()
    assert invoice.status == "issued" and invoice.gross == Decimal("59.86")  # 50.30 + 19 % VAT


@pytest.mark.django_db
def test_a_rectifying_invoice_replaces_an_issued_one_with_corrected_prices():
    invoice = invoice_issue(invoice=bill_october(1)[0], actor=None, now=NOW)
    # The October tariff version was wrong: the energy price is corrected.
    version = invoice.member.supply_contracts.get().tariff.versions.get()
    version.energy_price = Decimal("0.250000")
    version.save()
    credit, rectifying = invoice_rectify(
        invoice=invoice, actor=None, reason="wrong energy price", now=NOW
    )
    assert credit.gross == -invoice.gross and credit.original == invoice
    assert (rectifying.kind, rectifying.status, rectifying.original) == (
        "rectifying",
        "draft",
        invoice,
    )
    residual = rectifying.lines.get(kind="residual_supply")
    assert residual.net == Decimal("25.00")  # 100 kWh at the corrected 0.25
    issued = invoice_issue(invoice=invoice_review(invoice=rectifying, actor=None), actor=None,
                           now=NOW)  # fmt: skip
    assert issued.number == "R2026-000001"
    assert invoice.gross - issued.gross == Decimal("5.95")  # 5.00 + 19 % VAT
    with pytest.raises(ApplicationError, match="already annulled"):
        invoice_rectify(invoice=invoice, actor=None, reason="again", now=NOW)
