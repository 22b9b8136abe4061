"""Acceptance 1 of issue 19 in Chromium: an applicant joins at /join/, confirms their e-mail
address from the link in the message, staff (with TOTP) approve in the admin after the
confirmation page, and the new member sets a password from the invitation, logs in and sees
the dashboard of their one site, still without readings."""

from __future__ import annotations

import re

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core.cache import cache
from playwright.sync_api import expect

from apps.accounts.tests.factories import DEFAULT_PASSWORD, StaffUserFactory
from apps.billing.models import JoinApplication
from apps.billing.tests.factories import SupplyTariffVersionFactory
from apps.grid.tests.factories import TransformerFactory
from tests.fixtures.browser import totp_code

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _link(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def test_an_applicant_joins_is_approved_and_sees_their_site(live_server, page, mailoutbox):
    cache.delete("throttle:join:127.0.0.1")
    TransformerFactory(name="T-Lindenweg")
    SupplyTariffVersionFactory(tariff__name="Home")
    staff = StaffUserFactory()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)

    # 1. The applicant fills in the join form.
    page.goto(f"{live_server.url}/join/")
    for name, value in {
        "legal_name": "Ada Sonnberg",
        "email": "ada@example.org",
        "street": "Lindenweg 3",
        "postal_code": "10115",
        "city": "Berlin",
        "expected_kwh": "3200",
        "pv_kwp": "4.5",
        "account_holder": "Ada Sonnberg",
        "iban": "DE89 3704 0044 0532 0130 00",
        "shares": "2",
    }.items():
        page.fill(f"input[name={name}]", value)
    page.check("input[name=mandate_consent]")
    page.check("input[name=privacy_consent]")
    page.click("#join-submit")
    expect(page.locator("#join-sent")).to_be_visible()

    # 2. The link in the verification e-mail confirms the address.
    (verification,) = mailoutbox
    page.goto(_link(verification))
    expect(page.locator("#join-verified")).to_be_visible()

    # 3. Staff log in with TOTP, see the applicant in the to-do queue and approve.
    page.goto(f"{live_server.url}/accounts/login/?next=/admin/")
    page.fill("input[name=login]", staff.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/accounts/2fa/authenticate/.*"))
    page.fill("input[name=code]", totp_code(secret))
    page.click("#mfa-submit")
    page.wait_for_url(f"{live_server.url}/admin/")
    todo = page.locator("#staff-todo [data-todo=join_applications]")
    assert todo.inner_text().strip() == "1"
    page.click("#staff-todo a[href*=joinapplication]")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "approve")
    page.click("#changelist-form button[name=index]")
    expect(page.locator("#membership-confirmation")).to_be_visible()
    page.click("#confirm-action")
    expect(page.locator(".messagelist")).to_contain_text("1 application(s) approved")
    application = JoinApplication.objects.get()
    assert application.status == JoinApplication.Status.APPROVED
    page.context.clear_cookies()

    # 4. The invitation's link sets the password; the member logs in to their dashboard.
    invitation = next(m for m in mailoutbox if "set your password" in m.subject)
    page.goto(_link(invitation))
    page.fill("input[name=password1]", "Sunny-Roof-2026!")
    page.fill("input[name=password2]", "Sunny-Roof-2026!")
    page.click("form button[type=submit]")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", "ada@example.org")
    page.fill("input[name=password]", "Sunny-Roof-2026!")
    page.click("#login-submit")
    page.wait_for_url(f"{live_server.url}/")
    site = application.member.connection_points.get()
    expect(page.locator(f"#sites tr[data-site='{site.code}']")).to_contain_text("Berlin")
    expect(page.locator("#dashboard-empty")).to_be_visible()
    expect(page.locator("#member-line")).to_contain_text("Ada Sonnberg")
    assert page.js_errors == []
