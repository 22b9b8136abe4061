"""PDF rendering of a report (WeasyPrint) and reading it back (pypdf).

The PDF shows the tables (up to PDF_ROW_LIMIT rows each; the full data is embedded), the totals,
the content hash and the anchors, and embeds two files: ``report-data.csv`` (the canonical data,
exactly the bytes that were hashed) and ``report-meta.json`` (kind, parameters, hashes, anchors).
"""

from __future__ import annotations

import io
import json
from itertools import islice

from django.template.loader import render_to_string

from apps.compliance.reports.document import ParsedReport, ReportDocument, canonical

PDF_ROW_LIMIT = 100
PDF_ANCHOR_LIMIT = 50


def render_pdf(doc: ReportDocument) -> bytes:
    from weasyprint import HTML, Attachment

    tables = [
        {
            "name": t.name,
            "columns": t.columns,
            "rows": [[canonical(v) for v in row] for row in islice(t.iter_rows(), PDF_ROW_LIMIT)],
            "total_rows": t.row_count,
            "truncated": t.row_count > PDF_ROW_LIMIT,
        }
        for t in doc.tables
    ]
    html = render_to_string(
        "compliance/report_pdf.html",
        {
            "doc": doc,
            "meta": doc.meta(),
            "tables": tables,
            "totals": [(label, canonical(v)) for label, v in doc.totals],
            "anchors": [json.dumps(a, sort_keys=True, default=str) for a in doc.anchors][
                :PDF_ANCHOR_LIMIT
            ],
            "anchors_more": max(0, len(doc.anchors) - PDF_ANCHOR_LIMIT),
        },
    )
    attachments = [
        Attachment(string=b"".join(doc.iter_data()).decode("utf-8"), name="report-data.csv"),
        Attachment(
            string=json.dumps(doc.meta(), sort_keys=True, indent=1, default=str),
            name="report-meta.json",
        ),
    ]
    return HTML(string=html).write_pdf(attachments=attachments)


def pdf_text(raw: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def parse_pdf(raw: bytes) -> ParsedReport:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw))
    files = reader.attachments
    if "report-data.csv" not in files or "report-meta.json" not in files:
        raise ValueError("not an EnergySphere PDF report (embedded data missing)")
    data = files["report-data.csv"][0]
    meta = json.loads(files["report-meta.json"][0])
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return ParsedReport("pdf", meta, data, text=text)
