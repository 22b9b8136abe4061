"""Reports prove themselves: every export is sealed by the cooperative's report-signing key and
its content hash is anchored on chain (MeterOracle document anchor, through the outbox, against
the real anvil node). The forgery scenario — data edited, content hash recomputed, anchor lines
deleted — ends in FORGED for CSV, XLSX and PDF, even when the forger holds the report-signing key;
an untouched report is NOT_YET_ANCHORED until the outbox sends its anchor, then VERIFIED (asking
the chain, or the local record when the chain does not answer); a PDF whose printed totals differ
from its embedded data is caught."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from eth_account import Account
from openpyxl import load_workbook

from apps.chain.outbox import chain_outbox_sweep
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
from apps.compliance.services import report_export
from tests.fixtures.chain import free_port

from .conftest import MONTH

pytestmark = pytest.mark.django_db


def _download(client, kind, fmt):
    response = client.get(reverse("compliance:report_download", args=[kind, fmt]), {"month": MONTH})
    assert response.status_code == 200
    # the CSV of a streamed report (interval data, carbon) comes as a stream
    return b"".join(response.streaming_content) if response.streaming else response.content


def _forge_csv(raw: bytes) -> bytes:
    head, data = raw.decode().split(DATA_MARKER + "\n", 1)
    lines = data.split("\n")
    row = next(i for i, line in enumerate(lines) if re.search(r",\d+", line) and "[" not in line)
    lines[row] = re.sub(r",(\d+)", lambda m: f",{int(m.group(1)) + 7}", lines[row], count=1)
    data = "\n".join(lines)
    kept = [
        line
        for line in head.split("\n")
        if not line.startswith(("# anchor:", "# document_anchor:"))
    ]
    head = "\n".join(kept)
    head = re.sub(r"# content_sha256: \w+", f"# content_sha256: {sha256_hex(data.encode())}", head)
    anchors_hash = sha256_hex(anchors_canonical([]))
    head = re.sub(r"# anchors_sha256: \w+", f"# anchors_sha256: {anchors_hash}", head)
    return (head + DATA_MARKER + "\n" + data).encode()


def _anchor_everything() -> None:
    """The outbox worker's job: send and confirm every queued intent on the anvil node."""
    chain_outbox_sweep(wait_seconds=5)


@pytest.mark.chain
def test_an_untouched_report_is_not_yet_anchored_then_verified_in_every_format(
    world, auditor_client, chain, settings, tmp_path
):
    files = {fmt: _download(auditor_client, "carbon", fmt) for fmt in ("csv", "xlsx", "pdf")}
    for fmt, raw in files.items():
        result = report_verify(raw, against_db=True)
        assert result.verdict == "NOT_YET_ANCHORED", (fmt, result.as_dict())
        anchor = result.as_dict()["document_anchor"]
        assert (anchor["state"], anchor["source"], anchor["intent_status"]) == (
            "not yet anchored",
            "chain",
            "pending",
        )
        assert any(p.startswith("not yet anchored") for p in result.as_dict()["problems"])
    path = tmp_path / "carbon.pdf"
    path.write_bytes(files["pdf"])
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_report", str(path), stdout=io.StringIO())
    assert exit_info.value.code == 2  # not yet anchored: try again later

    _anchor_everything()
    oracle = chain.contract("MeterOracle")
    for fmt, raw in files.items():
        result = report_verify(raw, against_db=True)
        assert result.verdict == "VERIFIED", (fmt, result.as_dict())
        assert result.signer == trusted_signer_address()
        anchor = result.as_dict()["document_anchor"]
        assert (anchor["state"], anchor["source"]) == ("anchored", "chain")
        assert oracle.address in anchor["answered_by"]
        digest = bytes.fromhex(result.computed_hash)
        kind = b"compliance_report".ljust(32, b"\0")
        assert oracle.functions.documentAnchoredAt(kind, digest).call() > 0
    out = io.StringIO()
    call_command("verify_report", str(path), stdout=out)  # exits 0
    assert json.loads(out.getvalue())["document_anchor"]["source"] == "chain"

    # The chain does not answer: the local record (our confirmed outbox intent) answers instead,
    # and the output says so.
    settings.ANVIL_PORT = free_port()
    result = report_verify(files["csv"])
    assert result.verdict == "VERIFIED", result.as_dict()
    anchor = result.as_dict()["document_anchor"]
    assert anchor["source"] == "local record"
    assert "the chain did not answer" in anchor["answered_by"]


@pytest.mark.chain
def test_csv_forgery_with_recomputed_hashes_and_removed_anchors_is_forged(
    world, auditor_client, chain
):
    raw = _download(auditor_client, "carbon", "csv")
    _anchor_everything()
    assert report_verify(raw).verdict == "VERIFIED"
    assert b"# anchor:" in raw and b"# document_anchor:" in raw
    forged = _forge_csv(raw)
    assert forged != raw and b"# document_anchor:" not in forged
    result = report_verify(forged)
    assert result.verdict == "FORGED", result.as_dict()
    # The hashes themselves agree with the forged content: the seal and the missing on-chain
    # anchor of the new content hash betray it.
    assert result.declared_hash == result.computed_hash
    assert result.anchors_declared_hash == result.anchors_computed_hash
    assert result.seal_problem
    assert "never anchored on chain" in result.anchor_problem
    assert result.as_dict()["document_anchor"]["source"] == "chain"


@pytest.mark.chain
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf"])
def test_a_forger_holding_the_report_signing_key_is_still_forged(world, auditor_client, chain, fmt):
    """The report-signing key alone cannot make a report: an edited report, its hash
    recomputed, its anchor lines removed and sealed with the genuine key, is FORGED because its
    content hash was never anchored on chain by the cooperative."""
    genuine = _download(auditor_client, "carbon", fmt)
    _anchor_everything()
    assert report_verify(genuine).verdict == "VERIFIED"
    doc = report_build(kind="carbon", **_period())
    doc.tables[0].rows[0][-1] = "edited"
    doc.anchors = []
    forged, _, _ = report_render(doc, fmt)  # sealed by the genuine development key
    result = report_verify(forged)
    assert result.seal_problem is None and result.signer == trusted_signer_address()
    assert result.declared_hash == result.computed_hash
    assert result.verdict == "FORGED", result.as_dict()
    assert "never anchored on chain nor queued" in result.anchor_problem
    # ... and keeping the genuine file's anchor reference does not help: it is looked up by hash
    doc.document_anchor = {"kind": "compliance_report", "digest": "0x" + "11" * 32, "intent": 1}
    forged, _, _ = report_render(doc, fmt)
    assert report_verify(forged).verdict == "FORGED"


def test_re_signing_with_another_key_is_forged(world, auditor_client, settings, tmp_path):
    doc = report_build(kind="carbon", **_period())
    body, _, _ = report_export(doc=doc, fmt="csv", actor=None)
    genuine_signer = trusted_signer_address()
    attacker = Account.create()
    keystore = tmp_path / "attacker.json"
    keystore.write_text(json.dumps(Account.encrypt(attacker.key, "pw", iterations=2)))
    settings.REPORT_SIGNING_KEYSTORE_PATH = str(keystore)
    settings.REPORT_SIGNING_KEYSTORE_PASSWORD = "pw"
    settings.REPORT_SIGNER_ADDRESS = genuine_signer  # verifiers trust the cooperative's address
    resealed, _, _ = report_render(report_build(kind="carbon", **_period()), "csv")
    assert report_seal(doc)["signer"] == attacker.address
    result = report_verify(resealed)
    assert result.verdict == "FORGED"
    assert attacker.address in " ".join(result.problems)
    assert report_verify(body).verdict == "NOT_YET_ANCHORED"  # genuine, queued for the chain


@pytest.mark.chain
def test_xlsx_forgery_is_forged(world, auditor_client, chain):
    raw = _download(auditor_client, "carbon", "xlsx")
    _anchor_everything()
    assert report_verify(raw).verdict == "VERIFIED"
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
        if row[0].value == "document_anchor":  # the anchor line goes too
            row[0].value = row[1].value = None
    out = io.BytesIO()
    workbook.save(out)
    result = report_verify(out.getvalue())
    assert result.declared_hash == result.computed_hash
    assert result.verdict == "FORGED", result.as_dict()
    assert "never anchored on chain" in result.anchor_problem


@pytest.mark.chain
def test_pdf_forgery_is_forged_and_printed_totals_must_match(
    world, monkeypatch, settings, tmp_path, chain
):
    doc = report_build(kind="carbon", **_period())
    report_export(doc=doc, fmt="pdf", actor=None)
    _anchor_everything()
    doc = report_build(kind="carbon", **_period())
    doc.tables[0].rows[0][-1] = "edited"
    doc.anchors = []
    attacker = Account.create()
    keystore = tmp_path / "attacker.json"
    keystore.write_text(json.dumps(Account.encrypt(attacker.key, "pw", iterations=2)))
    genuine = trusted_signer_address()
    settings.REPORT_SIGNER_ADDRESS = genuine
    settings.REPORT_SIGNING_KEYSTORE_PATH = str(keystore)
    settings.REPORT_SIGNING_KEYSTORE_PASSWORD = "pw"
    forged, _, _ = report_render(doc, "pdf")
    assert canonical_data(doc.tables)  # the embedded data is the edited one
    result = report_verify(forged)
    assert result.verdict == "FORGED"
    assert result.seal_problem and "never anchored on chain" in result.anchor_problem

    settings.REPORT_SIGNING_KEYSTORE_PATH = ""
    doc = report_build(kind="carbon", **_period())
    label, value = doc.totals[0]
    original = pdf_module.render_to_string

    def printed_other_totals(template, context):
        context = {**context, "totals": [(label, "999999")] + context["totals"][1:]}
        return original(template, context)

    monkeypatch.setattr(pdf_module, "render_to_string", printed_other_totals)
    body, _, _ = report_export(doc=doc, fmt="pdf", actor=None)  # anchored above
    result = report_verify(body)
    assert result.verdict == "TAMPERED"
    assert any("printed total" in p and label in p for p in result.problems)


def _period():
    from datetime import UTC, datetime

    year, month = (int(x) for x in MONTH.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return {"start": start, "end": end}
