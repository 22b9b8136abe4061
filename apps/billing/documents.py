"""Invoice documents: the EN 16931 e-invoice (Factur-X, CII syntax) and the PDF/A-3 that embeds it.

The XML is built with `drafthorse`, whose serializer validates it against the Factur-X EN 16931
XSD (an invalid document raises instead of being sent). The PDF is rendered by WeasyPrint as
PDF/A-3b from billing/invoice_pdf.html and the XML attached as factur-x.xml. Both read the
invoice's stored lines and totals only, so the documents show exactly what the database holds.
"""

from __future__ import annotations

import textwrap
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
from apps.billing.models import Invoice, InvoiceLine, PaymentMethod
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


def invoice_xml(*, invoice: Invoice, lines: list[InvoiceLine] | None = None) -> bytes:
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

    if lines is None:
        lines = list(invoice.lines.order_by("position"))
    for line in lines:
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


def _percent(rate: Decimal) -> str:
    """0.19 → '19', 0.2 → '20', 0.055 → '5.5' (never an exponent)."""
    return format((Decimal(rate) * 100).normalize(), "f")


# (alignment, width in characters) of the preformatted columns of the PDF.
HEADER_COLUMNS = (("<", 16), ("<", 80))
LINE_COLUMNS = ((">", 3), ("<", 48), (">", 16), (">", 11), (">", 5), (">", 12))
VAT_COLUMNS = (("<", 10), (">", 14), (">", 14))
TOTAL_COLUMNS = (("<", 16), (">", 14))


def _grid(rows: list[tuple], columns: tuple[tuple[str, int], ...]) -> str:
    """Rows as fixed-width text columns (left-aligned columns wrap at their width)."""
    out = []
    for row in rows:
        cells = [
            (textwrap.wrap(str(value), width) or [""]) if align == "<" else [str(value)]
            for value, (align, width) in zip(row, columns, strict=True)
        ]
        for k in range(max(len(c) for c in cells)):
            parts = [
                f"{c[k] if k < len(c) else '':{align}{width}}"
                for c, (align, width) in zip(cells, columns, strict=True)
            ]
            out.append(" ".join(parts).rstrip())
    return "\n".join(out)


def invoice_context(*, invoice: Invoice, lines: list[InvoiceLine] | None = None) -> dict:
    """What billing/invoice_pdf.html shows: the tabular parts as preformatted text columns."""
    first, last, _ = month_days(invoice.period)
    member = invoice.member
    if lines is None:
        lines = list(invoice.lines.order_by("position"))
    header = [
        ("Member", f"{member.membership_number} {member.legal_name}"),
        ("Address", f"{member.street}, {member.postal_code} {member.city}"),
        ("Billing period", f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"),
        ("Issue date", f"{invoice.issue_date:%Y-%m-%d}" if invoice.issue_date else ""),
        ("Due date", f"{invoice.due_date:%Y-%m-%d}" if invoice.due_date else ""),
    ]
    if invoice.original_id:
        original = invoice.original
        label = "Annuls" if invoice.kind == Invoice.Kind.CREDIT_NOTE else "Replaces"
        reason = f" ({invoice.reason})" if invoice.reason else ""
        header.append((label, f"{original.number} of {original.issue_date:%Y-%m-%d}{reason}"))
    line_rows = [("#", "Description", "Quantity", "Unit price", "VAT", "Net")] + [
        (line.position, line.description, f"{line.quantity} {line.unit}", line.unit_price,
         f"{_percent(line.vat_rate)} %", line.net)
        for line in lines
    ]  # fmt: skip
    vat_rows = [("Rate", "Base", "VAT")] + [
        (f"{_percent(Decimal(g['rate']))} %", g["base"], g["vat"]) for g in invoice.vat_breakdown
    ]
    totals = [("Net total", invoice.net), ("VAT total", invoice.vat), ("Total", invoice.gross)]
    return {
        "invoice": invoice,
        "member": member,
        "seller": settings.BILLING_SELLER,
        "header": _grid(header, HEADER_COLUMNS),
        "lines": _grid(line_rows, LINE_COLUMNS),
        "vat": _grid(vat_rows, VAT_COLUMNS),
        "totals": _grid(totals, TOTAL_COLUMNS),
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

    lines = list(invoice.lines.order_by("position"))  # read once for the XML and the page
    xml = invoice_xml(invoice=invoice, lines=lines)
    html = render_to_string(
        "billing/invoice_pdf.html", invoice_context(invoice=invoice, lines=lines)
    )
    fonts, css = _print_setup()
    pdf = HTML(string=html).write_pdf(pdf_variant="pdf/a-3b", stylesheets=[css], font_config=fonts)
    return attach_xml(pdf, xml, level="EN 16931")
