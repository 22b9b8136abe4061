"""SEPA: mandates with validated IBAN/BIC; a month's pain.008 and pain.001 files validate against
their XSDs and carry exactly the invoices' totals; a second call creates nothing new."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from lxml import etree

from apps.billing.models import Mandate, PaymentInstruction, SepaFile
from apps.billing.services import (
    billing_run,
    invoice_credit,
    invoices_issue,
    invoices_review,
    mandate_create,
    mandate_revoke,
    sepa_files_create,
)
from apps.billing.tests.factories import (
    SupplyContractFactory,
    SupplyTariffVersionFactory,
    settled,
)
from apps.core.exceptions import ApplicationError
from apps.market.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 5, 8, tzinfo=UTC)
OCT = date(2026, 10, 1)
IBANS = ["DE02120300000000202051", "DE02100500000054540402", "DE75512108001245126199",
         "DE12500105170648489890", "DE02500105170137075030"]  # fmt: skip


def ns_text(xml: str, tag: str) -> list[str]:
    root = etree.fromstring(xml.encode())
    return [el.text for el in root.iter() if etree.QName(el).localname == tag]


def month_with(payers: list[tuple[int, str]]) -> list:
    """Members with (grid import Wh, payment method); each gets a mandate. October is billed
    and issued."""
    TariffFactory()
    version = SupplyTariffVersionFactory()
    members = []
    for k, (import_wh, method) in enumerate(payers):
        contract = SupplyContractFactory(tariff=version.tariff, payment_method=method)
        settled(contract.member, datetime(2026, 10, 9, tzinfo=UTC), grid_import_wh=import_wh,
                grid_export_wh=0 if import_wh else 500_000)  # fmt: skip
        mandate_create(member=contract.member, reference=f"MNDT-{k}", signed_on=date(2026, 1, 5),
                       account_holder=contract.member.legal_name, iban=IBANS[k])  # fmt: skip
        members.append(contract.member)
    billing_run(period="2026-10", now=NOW)
    invoices_review(period=OCT, actor=None)
    invoices_issue(period=OCT, actor=None, now=NOW)
    return members


def test_mandates_refuse_invalid_accounts_and_replace_the_active_one():
    member = SupplyContractFactory().member
    with pytest.raises(ApplicationError, match="Invalid IBAN"):
        mandate_create(member=member, reference="M1", signed_on=date(2026, 1, 1),
                       account_holder="A", iban="DE02120300000000202052")  # fmt: skip
    with pytest.raises(ApplicationError, match="Invalid BIC"):
        mandate_create(member=member, reference="M1", signed_on=date(2026, 1, 1),
                       account_holder="A", iban=IBANS[0], bic="BYLA")  # fmt: skip
    first = mandate_create(member=member, reference="M1", signed_on=date(2026, 1, 1),
                           account_holder="A", iban="de02 1203 0000 0000 2020 51")  # fmt: skip
    assert (first.iban, first.bic) == ("DE02120300000000202051", "BYLADEM1001")  # BIC derived
    mandate_create(member=member, reference="M2", signed_on=date(2026, 2, 1),
                   account_holder="A", iban=IBANS[1])  # fmt: skip
    assert list(Mandate.objects.order_by("reference").values_list("status", flat=True)) == [
        "revoked",
        "active",
    ]


def test_collection_and_payout_files_validate_and_total_the_invoices():
    month_with([(100_000, "direct_debit"), (200_000, "direct_debit"), (0, "direct_debit"),
                (100_000, "transfer")])  # fmt: skip
    result = sepa_files_create(period=OCT, now=NOW, execution_date=date(2026, 11, 12))
    collection = SepaFile.objects.get(kind="pain.008")
    payout = SepaFile.objects.get(kind="pain.001")
    # 59.86 + (60+18+4+9.30 = 91.30 + 17.35 VAT = 108.65); the transfer payer is not collected.
    assert collection.total == Decimal("168.51") and collection.count == 2
    assert ns_text(collection.content, "CtrlSum")[0] == "168.51"
    assert sorted(ns_text(collection.content, "InstdAmt")) == ["108.65", "59.86"]
    assert ns_text(collection.content, "SeqTp") == ["FRST"]
    assert "DE98ZZZ09999999999" in collection.content
    # The producer is owed 40.00 − 9.30 − 1.77 = 28.93.
    assert payout.total == Decimal("28.93") and ns_text(payout.content, "CtrlSum")[0] == "28.93"
    assert [f["kind"] for f in result["files"]] == ["pain.008", "pain.001"]
    assert result["missing_mandate"] == []
    e2e = set(ns_text(collection.content, "EndToEndId")) | set(
        ns_text(payout.content, "EndToEndId")
    )
    assert e2e == set(PaymentInstruction.objects.values_list("end_to_end_id", flat=True))
    # Idempotent: nothing new to send.
    again = sepa_files_create(period=OCT, now=NOW)
    assert again["files"] == [] and SepaFile.objects.count() == 2
    assert billing_run(period="2026-10", now=NOW)["sepa_files"] == [collection.name, payout.name]


def test_an_annulled_invoice_not_yet_collected_is_not_collected_nor_paid_out():
    members = month_with([(100_000, "direct_debit"), (200_000, "direct_debit")])
    from apps.billing.models import Invoice

    invoice_credit(invoice=Invoice.objects.get(member=members[0]), actor=None, reason="void",
                   now=NOW)  # fmt: skip
    sepa_files_create(period=OCT, now=NOW)
    assert list(SepaFile.objects.values_list("kind", "total")) == [("pain.008", Decimal("108.65"))]


def test_direct_debit_payers_without_a_mandate_are_reported():
    members = month_with([(100_000, "direct_debit")])
    mandate_revoke(mandate=Mandate.objects.get(member=members[0]), actor=None)
    result = sepa_files_create(period=OCT, now=NOW)
    assert result["files"] == [] and result["missing_mandate"] == ["F2026-000001"]


def test_sepa_command_prints_the_files_and_writes_them_out(tmp_path):
    import json
    from io import StringIO

    from django.core.management import call_command

    month_with([(100_000, "direct_debit")])
    out = StringIO()
    call_command("billing_sepa", "--period", "2026-10", "--out", str(tmp_path), stdout=out)
    result = json.loads(out.getvalue())
    assert [(f["kind"], f["count"], f["total"]) for f in result["files"]] == [
        ("pain.008", 1, "59.86")
    ]
    written = tmp_path / result["files"][0]["name"]
    assert "<CtrlSum>59.86</CtrlSum>" in written.read_text()
