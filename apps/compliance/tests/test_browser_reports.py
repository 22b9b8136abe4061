"""Acceptance 2, in Chromium: an auditor logs in through the real login page, opens the carbon
report, downloads it as PDF and CSV, and the content hash shown on the page matches both files."""

from __future__ import annotations

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from apps.accounts.tests.factories import DEFAULT_PASSWORD, AuditorUserFactory
from apps.compliance.reports import report_verify
from apps.compliance.reports.document import DATA_MARKER, sha256_hex
from apps.compliance.reports.pdf import parse_pdf
from tests.fixtures.browser import totp_code

from .conftest import MONTH

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_auditor_downloads_the_carbon_report_and_the_hash_matches(
    world, live_server, page, tmp_path
):
    auditor = AuditorUserFactory()
    secret = generate_totp_secret()
    TOTP.activate(auditor, secret)  # auditors, like staff, pass TOTP before reading anything
    target = f"/compliance/reports/carbon/?month={MONTH}"
    page.goto(f"{live_server.url}/accounts/login/?next={target}")
    page.fill("input[name=login]", auditor.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("#login-submit")
    page.fill("input[name=code]", totp_code(secret))
    page.click("#mfa-submit")
    page.wait_for_url(f"{live_server.url}{target}")
    shown = page.locator("#content-hash").inner_text().strip()
    assert len(shown) == 64
    assert "Scope 2" in page.locator("h1").inner_text()

    files = {}
    for fmt in ("pdf", "csv"):
        with page.expect_download() as info:
            page.click(f"#download-{fmt}")
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        files[fmt] = path.read_bytes()

    csv_head, csv_data = files["csv"].split((DATA_MARKER + "\n").encode(), 1)
    assert sha256_hex(csv_data) == shown  # the data section itself hashes to the shown hash
    assert f"# content_sha256: {shown}" in csv_head.decode()
    pdf = parse_pdf(files["pdf"])
    assert sha256_hex(pdf.data) == shown  # the data embedded in the PDF
    assert shown in "".join(pdf.text.split())  # and the hash printed on it
    assert pdf.data == csv_data  # both formats carry the same data
    for body in files.values():
        # intact and sealed; no outbox worker runs here, so its anchor is still queued
        result = report_verify(body, against_db=True)
        assert result.verdict == "NOT_YET_ANCHORED", result.as_dict()
    assert page.js_errors == []
