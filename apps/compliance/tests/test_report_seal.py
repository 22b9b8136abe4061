"""Reports prove themselves: every export is sealed by the cooperative's report-signing key.
The forgery scenario — data edited, content hash recomputed, anchor lines deleted — ends in
FORGED for CSV, XLSX and PDF; an untouched report is VERIFIED; a PDF whose printed totals differ
from its embedded data is caught."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.urls import reverse
from eth_account import Account
from openpyxl import load_workbook

from apps.compliance.reports import pdf as pdf_module
from apps.compliance.reports import report_build, report_render, report_verify
from apps.compliance.reports.document import (
    DATA_MARKER,
    anchors_canonical,
    canonical_data,
    parse_xlsx,
    sha256_hex,
)
from apps.compliance.reports.signing import report_seal, trusted_signer_address

from .conftest import MONTH

pytestmark = pytest.mark.django_db


def _download(client, kind, fmt):
    response = client.get(reverse("compliance:report_download", args=[kind, fmt]), {"month": MONTH})
    assert response.status_code == 200
    return response.content


def _forge_csv(raw: bytes) -> bytes:
    head, data = raw.decode().split(DATA_MARKER + "\n", 1)
    lines = data.split("\n")
    row = next(i for i, line in enumerate(lines) if re.search(r",\d+", line) and "[" not in line)
    lines[row] = re.sub(r",(\d+)", lambda m: f",{int(m.group(1)) + 7}", lines[row], count=1)
    data = "\n".join(lines)
    kept = [line for line in head.split("\n") if not line.startswith("# anchor:")]
    head = "\n".join(kept)
    head = re.sub(r"# content_sha256: \w+", f"# content_sha256: {sha256_hex(data.encode())}", head)
    anchors_hash = sha256_hex(anchors_canonical([]))
    head = re.sub(r"# anchors_sha256: \w+", f"# anchors_sha256: {anchors_hash}", head)
    return (head + DATA_MARKER + "\n" + data).encode()


def test_an_untouched_report_is_verified_in_every_format(world, auditor_client):
    for fmt in ("csv", "xlsx", "pdf"):
        result = report_verify(_download(auditor_client, "carbon", fmt), against_db=True)
        assert result.verdict == "VERIFIED", (fmt, result.as_dict())
        assert result.signer == trusted_signer_address()


def test_csv_forgery_with_recomputed_hashes_and_removed_anchors_is_forged(world, auditor_client):
    raw = _download(auditor_client, "carbon", "csv")
    assert b"# anchor:" in raw  # the genuine report relies on anchors
    forged = _forge_csv(raw)
    assert forged != raw
    result = report_verify(forged)
    assert result.verdict == "FORGED", result.as_dict()
    # The hashes themselves agree with the forged content: only the seal betrays it.
    assert result.declared_hash == result.computed_hash
    assert result.anchors_declared_hash == result.anchors_computed_hash


def test_re_signing_with_another_key_is_forged(world, auditor_client, settings, tmp_path):
    doc = report_build(kind="carbon", **_period())
    body, _, _ = report_render(doc, "csv")
    genuine_signer = trusted_signer_address()
    attacker = Account.create()
    keystore = tmp_path / "attacker.json"
    keystore.write_text(json.dumps(Account.encrypt(attacker.key, "pw")))
    settings.REPORT_SIGNING_KEYSTORE_PATH = str(keystore)
    settings.REPORT_SIGNING_KEYSTORE_PASSWORD = "pw"
    settings.REPORT_SIGNER_ADDRESS = genuine_signer  # verifiers trust the cooperative's address
    resealed, _, _ = report_render(report_build(kind="carbon", **_period()), "csv")
    assert report_seal(doc)["signer"] == attacker.address
    result = report_verify(resealed)
    assert result.verdict == "FORGED"
    assert attacker.address in " ".join(result.problems)
    assert report_verify(body).verdict == "VERIFIED"


def test_xlsx_forgery_is_forged(world, auditor_client):
    raw = _download(auditor_client, "carbon", "xlsx")
    workbook = load_workbook(io.BytesIO(raw))
    index = {row[0].value: row[1].value for row in workbook["Tables"].iter_rows(min_row=2)}
    sheet = workbook[next(iter(index.values()))]
    cell = next(c for row in sheet.iter_rows(min_row=2) for c in row if isinstance(c.value, int))
    cell.value += 7
    anchors = workbook["Anchors"]
    anchors.delete_rows(2, anchors.max_row)
    out = io.BytesIO()
    workbook.save(out)
    parsed = parse_xlsx(out.getvalue())
    report = workbook["Report"]
    for row in report.iter_rows():
        if row[0].value == "content_sha256":
            row[1].value = sha256_hex(parsed.data)
        if row[0].value == "anchors_sha256":
            row[1].value = sha256_hex(anchors_canonical([]))
    out = io.BytesIO()
    workbook.save(out)
    result = report_verify(out.getvalue())
    assert result.declared_hash == result.computed_hash
    assert result.verdict == "FORGED", result.as_dict()


def test_pdf_forgery_is_forged_and_printed_totals_must_match(
    world, monkeypatch, settings, tmp_path
):
    doc = report_build(kind="carbon", **_period())
    doc.tables[0].rows[0][-1] = "edited"
    doc.anchors = []
    attacker = Account.create()
    keystore = tmp_path / "attacker.json"
    keystore.write_text(json.dumps(Account.encrypt(attacker.key, "pw")))
    genuine = trusted_signer_address()
    settings.REPORT_SIGNER_ADDRESS = genuine
    settings.REPORT_SIGNING_KEYSTORE_PATH = str(keystore)
    settings.REPORT_SIGNING_KEYSTORE_PASSWORD = "pw"
    forged, _, _ = report_render(doc, "pdf")
    assert canonical_data(doc.tables)  # the embedded data is the edited one
    assert report_verify(forged).verdict == "FORGED"

    settings.REPORT_SIGNING_KEYSTORE_PATH = ""
    doc = report_build(kind="carbon", **_period())
    label, value = doc.totals[0]
    original = pdf_module.render_to_string

    def printed_other_totals(template, context):
        context = {**context, "totals": [(label, "999999")] + context["totals"][1:]}
        return original(template, context)

    monkeypatch.setattr(pdf_module, "render_to_string", printed_other_totals)
    body, _, _ = report_render(doc, "pdf")
    result = report_verify(body)
    assert result.verdict == "TAMPERED"
    assert any("printed total" in p and label in p for p in result.problems)


def _period():
    from datetime import UTC, datetime

    year, month = (int(x) for x in MONTH.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return {"start": start, "end": end}
