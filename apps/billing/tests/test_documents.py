"""Invoice PDFs: PDF/A-3 with an embedded Factur-X EN 16931 XML that passes drafthorse's XSD
check, and totals in the PDF and the XML equal to the database's."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from drafthorse.utils import validate_xml
from lxml import etree
from pypdf import PdfReader

from apps.billing.documents import _grid, _percent, invoice_pdf
from apps.billing.services import invoice_issue, invoice_rectify, invoice_review
from apps.billing.tests.test_invoices import NOW, bill_october

pytestmark = pytest.mark.django_db

RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"


def embedded_xml(pdf: bytes) -> bytes:
    reader = PdfReader(io.BytesIO(pdf))
    assert list(reader.attachments) == ["factur-x.xml"]
    return reader.attachments["factur-x.xml"][0]


def pdf_text(pdf: bytes) -> str:
    """The PDF's text with runs of whitespace as one space (columns are space-aligned)."""
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())


def xml_total(xml: bytes, tag: str) -> Decimal:
    return Decimal(etree.fromstring(xml).find(f".//{RAM}{tag}").text)


def test_invoice_pdf_embeds_a_valid_en16931_xml_with_the_database_totals():
    invoice = invoice_issue(invoice=bill_october(1)[0], actor=None, now=NOW)
    pdf = invoice_pdf(invoice=invoice)
    xml = embedded_xml(pdf)
    validate_xml(xml, "FACTUR-X_EN16931")  # raises when the XML breaks the schema
    assert xml_total(xml, "TaxBasisTotalAmount") == invoice.net == Decimal("50.30")
    assert xml_total(xml, "TaxTotalAmount") == invoice.vat == Decimal("9.56")
    assert xml_total(xml, "GrandTotalAmount") == invoice.gross == Decimal("59.86")
    assert xml_total(xml, "DuePayableAmount") == invoice.gross
    root = etree.fromstring(xml)
    header = root.find(f".//{RAM}SpecifiedTradeSettlementHeaderMonetarySummation")
    assert header.find(f"{RAM}LineTotalAmount").text == "50.30"
    lines = root.findall(f".//{RAM}IncludedSupplyChainTradeLineItem")
    assert len(lines) == invoice.lines.count()
    line_totals = [Decimal(x.find(f".//{RAM}LineTotalAmount").text) for x in lines]
    assert sum(line_totals) == invoice.net
    text = pdf_text(pdf)
    assert f"Invoice {invoice.number}" in text
    for label, amount in [("Net total", invoice.net), ("VAT total", invoice.vat),
                          ("Total", invoice.gross)]:  # fmt: skip
        assert f"{label} {amount}" in text
    assert "2026-10-01 to 2026-10-31" in text and "Due date 2026-11-19" in text
    for line in invoice.lines.all():  # every line is on the page with its amount
        assert f"{line.position} {line.description} {line.quantity} {line.unit}" in text
        assert f"{line.unit_price} {_percent(line.vat_rate)} % {line.net}" in text


def test_a_long_description_wraps_inside_its_column_and_amounts_stay_aligned():
    text = _grid(
        [(1, "Adjustment 2026-09: Network fee on energy bought from members", "1.000 kWh",
          Decimal("12.34")), (2, "Levies", "2.000 kWh", Decimal("-0.50"))],
        ((">", 3), ("<", 30), (">", 12), (">", 8)),
    )  # fmt: skip
    rows = text.split("\n")
    assert rows[0] == "  1 Adjustment 2026-09: Network       1.000 kWh    12.34"
    assert rows[1].strip() == "fee on energy bought from"
    assert rows[3].endswith("   -0.50") and len(rows[3]) == len(rows[0])
    assert _percent(Decimal("0.2000")) == "20" and _percent(Decimal("0.055")) == "5.5"


def test_credit_note_and_rectifying_invoice_reference_the_original():
    invoice = invoice_issue(invoice=bill_october(1)[0], actor=None, now=NOW)
    credit, rectifying = invoice_rectify(invoice=invoice, actor=None, reason="meter swap",
                                         now=NOW)  # fmt: skip
    rectifying = invoice_issue(invoice=invoice_review(invoice=rectifying, actor=None), actor=None,
                               now=NOW)  # fmt: skip
    for document, type_code, gross in [(credit, "381", invoice.gross),
                                       (rectifying, "384", rectifying.gross)]:  # fmt: skip
        pdf = invoice_pdf(invoice=document)
        xml = embedded_xml(pdf)
        validate_xml(xml, "FACTUR-X_EN16931")
        root = etree.fromstring(xml)
        rsm = "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}"
        assert root.find(f"{rsm}ExchangedDocument/{RAM}TypeCode").text == type_code
        ref = root.find(f".//{RAM}InvoiceReferencedDocument/{RAM}IssuerAssignedID")
        assert ref.text == invoice.number
        assert xml_total(xml, "GrandTotalAmount") == gross  # a credit note states it positively
        assert f"Replaces {invoice.number}" in pdf_text(pdf) or (
            f"Annuls {invoice.number}" in pdf_text(pdf)
        )
    assert credit.gross == -invoice.gross


def test_a_draft_has_no_e_invoice():
    draft = bill_october(1)[0]
    with pytest.raises(ValueError, match="issued"):
        invoice_pdf(invoice=draft)


def test_a_transfer_payer_is_given_the_structured_creditor_reference():
    from apps.billing.invoicing import creditor_reference
    from apps.billing.models import Invoice
    from apps.billing.tests.test_sepa import month_with

    month_with([(100_000, "transfer")])
    invoice = Invoice.objects.get()
    pdf = invoice_pdf(invoice=invoice)
    reference = creditor_reference(invoice.number)
    root = etree.fromstring(embedded_xml(pdf))
    assert root.find(f".//{RAM}PaymentReference").text == reference
    assert root.find(f".//{RAM}SpecifiedTradeSettlementPaymentMeans/{RAM}TypeCode").text == "58"
    assert reference in pdf_text(pdf)
