"""The auditor, logged in through the real pages with TOTP, sees no action anywhere: no admin
action choices, no add links, no buttons on the staff pages; a crafted POST of each former action
answers 403 and writes nothing (the HTTP-level matrix is tests/test_permission_matrix.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib import admin
from django.urls import reverse

from apps.accounts.tests.factories import DEFAULT_PASSWORD, AuditorUserFactory, MemberFactory
from apps.audit.models import AuditLog
from apps.compliance.models import ErasureRequest
from apps.market.models import SettlementRun
from tests.fixtures.browser import totp_code

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_auditor_sees_no_action_in_the_admin_or_the_staff_pages(live_server, page):
    auditor = AuditorUserFactory()
    secret = generate_totp_secret()
    TOTP.activate(auditor, secret)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    run = SettlementRun.objects.create(
        period_start=start, period_end=start + timedelta(days=1), status="settled"
    )
    erasure = ErasureRequest.objects.create(member=MemberFactory())

    page.goto(f"{live_server.url}/accounts/login/?next=/admin/")
    page.fill("input[name=login]", auditor.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/accounts/2fa/authenticate/.*"))
    page.fill("input[name=code]", totp_code(secret))
    page.click("#mfa-submit")
    page.wait_for_url(f"{live_server.url}/admin/")

    for model in admin.site._registry:
        opts = model._meta
        page.goto(live_server.url + reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        label = opts.label
        assert page.locator("select[name=action]").count() == 0, label
        assert page.locator("a.addlink").count() == 0, label
        assert page.locator("#changelist-form input[type=submit]").count() == 0, label

    for name in ("market:runs", "compliance:erasure", "incentives:registry"):
        page.goto(live_server.url + reverse(name))
        # Filters (GET forms) stay; no form that would change anything is offered.
        assert page.locator("main form[method=post]").count() == 0, name
    assert page.js_errors == []

    # Crafted POSTs with the auditor's own session and CSRF token: refused, nothing written.
    before = AuditLog.objects.count()
    for url, data in (
        (reverse("market:run_anchor", args=[run.pk]), {}),
        (reverse("compliance:erasure_handle", args=[erasure.pk]), {"action": "erase"}),
        (
            reverse("admin:market_settlementrun_changelist"),
            {"action": "approve_and_anchor", "_selected_action": [str(run.pk)]},
        ),
    ):
        response = page.request.post(
            live_server.url + url,
            form=data,
            headers={"X-CSRFToken": _csrf(page), "Referer": live_server.url + url},
        )
        assert response.status == 403, url
    assert AuditLog.objects.count() == before
    run.refresh_from_db()
    erasure.refresh_from_db()
    assert run.status == "settled" and run.approved_by is None
    assert erasure.status == "requested"


def _csrf(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
