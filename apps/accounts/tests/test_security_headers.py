"""Content Security Policy: pages load scripts only from our origin or nonce-carrying inline
blocks; no framing; forms post only to us."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in (p.strip() for p in header.split(";"))
        if part
    }


def test_login_page_forbids_foreign_scripts_inline_handlers_and_framing(client):
    policy = _policy(client.get(reverse("account_login")))
    assert policy["default-src"] == "'self'"
    assert "unsafe-inline" not in policy["script-src"]
    assert "unsafe-eval" not in policy["script-src"]
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert policy["form-action"] == "'self'"


def test_an_inline_script_runs_only_with_the_responses_nonce(client, staff_user):
    login_with_mfa(client, staff_user)
    response = client.get(reverse("grid:dashboard"))
    assert response.status_code == 200
    nonce = re.search(r"'nonce-([^']+)'", _policy(response)["script-src"]).group(1)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.content.decode())
    assert inline and all(f'nonce="{nonce}"' in attrs for attrs in inline)
    other = client.get(reverse("grid:dashboard"))
    assert re.search(r"'nonce-([^']+)'", _policy(other)["script-src"]).group(1) != nonce


def test_no_template_uses_inline_event_handlers():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    offenders = [
        str(path.relative_to(root))
        for pattern in ("templates/**/*.html", "apps/*/templates/**/*.html")
        for path in root.glob(pattern)
        if re.search(r"\son[a-z]+=\"", path.read_text())
    ]
    assert offenders == []
