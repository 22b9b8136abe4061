"""Invoice documents: the EN 16931 e-invoice (Factur-X, CII syntax) and the PDF/A-3 that embeds it.

The XML is built with `drafthorse`, whose serializer validates it against the Factur-X EN 16931
XSD (an invalid document raises instead of being sent). The PDF is rendered by WeasyPrint as
PDF/A-3b from billing/invoice_pdf.html and the XML attached as factur-x.xml. Both read the
invoice's stored lines and totals only, so the documents show exactly what the database holds.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentMeans, PaymentTerms
from drafthorse.models.tradelines import LineItem
from drafthorse.pdf import attach_xml

from apps.billing.invoicing import creditor_reference
from apps.billing.models import Invoice, PaymentMethod
from apps.billing.selectors import month_days

GUIDELINE = "urn:cen.eu:en16931:2017"
SCHEMA = "FACTUR-X_EN16931"
TYPE_CODE = {
    Invoice.Kind.INVOICE: "380",
    Invoice.Kind.CREDIT_NOTE: "381",
    Invoice.Kind.RECTIFYING: "384",
    Invoice.Kind.SHARE_CAPITAL: "380",
}
UNIT_CODE = {"kWh": "KWH", "month": "MON", "token": "C62", "share": "C62"}


def _category(rate: Decimal) -> str:
    return "S" if rate > 0 else "Z"


def invoice_xml(*, invoice: Invoice) -> bytes:
    """The invoice as Factur-X EN 16931 XML (CII), validated against the XSD on the way out.

    A credit note (type 381) states the annulled amounts positively, as EN 16931 wants; invoices
    and rectifying invoices (384) carry the signs of the database."""
    if invoice.status != Invoice.Status.ISSUED:
        raise ValueError("Only issued documents have an e-invoice.")
    sign = Decimal(-1) if invoice.kind == Invoice.Kind.CREDIT_NOTE else Decimal(1)
    seller = settings.BILLING_SELLER
    member = invoice.member
    currency = invoice.currency
    doc = Document()
    doc.context.guideline_parameter.id = GUIDELINE
    doc.header.id = invoice.number
    doc.header.type_code = TYPE_CODE[invoice.kind]
    doc.header.issue_date_time = invoice.issue_date

    agreement = doc.trade.agreement
    agreement.seller.name = seller["name"]
    agreement.seller.address.line_one = seller["street"]
    agreement.seller.address.postcode = seller["postal_code"]
    agreement.seller.address.city_name = seller["city"]
    agreement.seller.address.country_id = seller["country"]
    agreement.seller.tax_registrations.add(TaxRegistration(id=("VA", seller["vat_id"])))
    agreement.buyer.id = member.membership_number
    agreement.buyer.name = member.legal_name
    agreement.buyer.address.line_one = member.street
    agreement.buyer.address.postcode = member.postal_code
    agreement.buyer.address.city_name = member.city
    agreement.buyer.address.country_id = member.country
    first, last, _ = month_days(invoice.period)
    doc.trade.delivery.event.occurrence = last

    settlement = doc.trade.settlement
    settlement.currency_code = currency
    settlement.payment_reference = creditor_reference(invoice.number)
    means = PaymentMeans()
    if invoice.payment_method == PaymentMethod.DIRECT_DEBIT and invoice.gross > 0:
        means.type_code = "59"  # SEPA direct debit
    else:
        means.type_code = "58"  # SEPA credit transfer
        means.payee_account.iban = seller["iban"]
    settlement.payment_means.add(means)
    settlement.period.start = first
    settlement.period.end = last
    terms = PaymentTerms()
    terms.due = invoice.due_date
    settlement.terms.add(terms)
    if invoice.original_id:
        settlement.invoice_referenced_document.issuer_assigned_id = invoice.original.number
        settlement.invoice_referenced_document.issue_date_time = invoice.original.issue_date

    for line in invoice.lines.order_by("position"):
        net = sign * line.net
        quantity = abs(line.quantity) * (-1 if net < 0 else 1)
        item = LineItem()
        item.document.line_id = str(line.position)
        item.product.name = line.description
        item.agreement.net.amount = abs(line.unit_price)
        item.delivery.billed_quantity = (quantity, UNIT_CODE.get(line.unit, "C62"))
        item.settlement.trade_tax.type_code = "VAT"
        item.settlement.trade_tax.category_code = _category(line.vat_rate)
        item.settlement.trade_tax.rate_applicable_percent = line.vat_rate * 100
        item.settlement.monetary_summation.total_amount = net
        doc.trade.items.add(item)

    for group in invoice.vat_breakdown:
        rate = Decimal(group["rate"])
        tax = ApplicableTradeTax()
        tax.calculated_amount = sign * Decimal(group["vat"])
        tax.basis_amount = sign * Decimal(group["base"])
        tax.type_code = "VAT"
        tax.category_code = _category(rate)
        tax.rate_applicable_percent = rate * 100
        settlement.trade_tax.add(tax)

    total = settlement.monetary_summation
    total.line_total = sign * invoice.net
    total.charge_total = Decimal("0.00")
    total.allowance_total = Decimal("0.00")
    total.tax_basis_total = sign * invoice.net
    total.tax_total = (sign * invoice.vat, currency)
    total.grand_total = sign * invoice.gross
    total.due_amount = sign * invoice.gross
    return doc.serialize(schema=SCHEMA)


def invoice_context(*, invoice: Invoice) -> dict:
    first, last, _ = month_days(invoice.period)
    return {
        "invoice": invoice,
        "member": invoice.member,
        "lines": list(invoice.lines.order_by("position")),
        "vat_groups": [
            {
                "percent": (Decimal(g["rate"]) * 100).normalize(),
                "base": g["base"],
                "vat": g["vat"],
            }
            for g in invoice.vat_breakdown
        ],
        "seller": settings.BILLING_SELLER,
        "first": first,
        "last": last,
        "creditor_reference": creditor_reference(invoice.number),
    }


_renderer = threading.local()


def _print_setup() -> tuple[Any, Any]:
    """(FontConfiguration, compiled print stylesheet), made once per process and thread: font
    discovery and CSS parsing are a quarter of a render when repeated for every document."""
    if getattr(_renderer, "setup", None) is None:
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration

        fonts = FontConfiguration()
        css = CSS(string=render_to_string("billing/invoice_pdf.css"), font_config=fonts)
        _renderer.setup = (fonts, css)
    return _renderer.setup


def invoice_pdf(*, invoice: Invoice) -> bytes:
    """The issued document as PDF/A-3b with its Factur-X XML embedded."""
    from weasyprint import HTML

    xml = invoice_xml(invoice=invoice)
    html = render_to_string("billing/invoice_pdf.html", invoice_context(invoice=invoice))
    fonts, css = _print_setup()
    pdf = HTML(string=html).write_pdf(pdf_variant="pdf/a-3b", stylesheets=[css], font_config=fonts)
    return attach_xml(pdf, xml, level="EN 16931")
