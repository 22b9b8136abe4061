"""The real login pages in Chromium: member to dashboard, staff through TOTP to the admin."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.utils import timezone

from apps.accounts.services import mfa_enrollment_issue
from apps.accounts.tests.factories import DEFAULT_PASSWORD, MemberFactory, StaffUserFactory
from tests.fixtures.browser import totp_code

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _log_in(page, base_url: str, email: str, next_path: str = "") -> None:
    page.goto(f"{base_url}/accounts/login/{'?next=' + next_path if next_path else ''}")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("#login-submit")


def _member_with_readings():
    from apps.meters.services import BackfillRow, readings_backfill
    from apps.meters.tests.factories import MeterFactory

    member = MemberFactory(legal_name="Greta Sonnenschein")
    meter = MeterFactory(member=member)
    now = timezone.now()
    start = (now - timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)
    count = int((now - start) / timedelta(minutes=15))
    readings_backfill(
        rows=[
            BackfillRow(
                meter_id=meter.pk,
                interval_start=start + i * timedelta(minutes=15),
                import_wh=150,
                export_wh=40,
                private_key=None,
            )
            for i in range(count)
        ],
        source="backfill",
    )
    return member, count


def test_member_logs_in_and_sees_their_dashboard(live_server, page):
    member, intervals = _member_with_readings()
    MemberFactory(legal_name="Somebody Else")

    _log_in(page, live_server.url, member.user.email)

    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert "Greta Sonnenschein" in page.locator("#member-line").inner_text()
    assert "Somebody Else" not in page.content()
    week_kwh = page.locator("#week-import").inner_text()
    assert week_kwh.startswith(f"{intervals * 150 / 1000:.2f}")
    # Chart.js (vendored, served from /static) drew both series into the canvases.
    page.wait_for_function("window.energysphereCharts && window.energysphereCharts.week")
    points = page.evaluate("window.energysphereCharts.week.data.datasets[0].data.length")
    assert points > 24
    assert page.locator("#live-balance").count() == 1
    nav = page.locator("nav.sidenav").inner_text()
    for label in ("Dashboard", "Meters", "Trading", "Wallet", "My data"):
        assert label in nav
    assert page.js_errors == []


def test_staff_logs_in_with_totp_and_cannot_skip_it(live_server, page):
    staff = StaffUserFactory()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)

    _log_in(page, live_server.url, staff.email, next_path="/admin/")
    page.wait_for_url(re.compile(r".*/accounts/2fa/authenticate/.*"))

    # Skipping the code and going straight to the admin leads back to a login form.
    page.goto(f"{live_server.url}/admin/accounts/member/")
    assert "Site administration" not in page.content()
    assert page.locator("input[name=password]").count() == 1

    # Back to the login page: the pending login resumes at the code stage (or starts over).
    page.goto(f"{live_server.url}/accounts/login/?next=/admin/")
    if page.locator("input[name=login]").count():
        _log_in(page, live_server.url, staff.email, next_path="/admin/")
    page.wait_for_url(re.compile(r".*/accounts/2fa/authenticate/.*"))
    page.fill("input[name=code]", totp_code(secret))
    page.click("#mfa-submit")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert "Site administration" in page.content()


def test_staff_without_totp_sets_it_up_only_through_an_enrollment_link(live_server, page):
    staff = StaffUserFactory()

    _log_in(page, live_server.url, staff.email, next_path="/admin/")
    page.wait_for_url(re.compile(r".*/accounts/mfa/enrollment-required/"))
    assert page.locator("#staff-mfa-enrollment-required").is_visible()
    # Neither the admin nor the activation page lets a password alone enrol an authenticator.
    for path in ("/admin/accounts/member/", "/accounts/2fa/totp/activate/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_url(re.compile(r".*/accounts/mfa/enrollment-required/"))

    token = mfa_enrollment_issue(user=staff, actor="console")
    page.goto(f"{live_server.url}/accounts/mfa/enroll/{token}/")
    page.wait_for_url(re.compile(r".*/accounts/2fa/totp/activate/"))
    assert page.locator("#staff-mfa-required").is_visible()

    secret = page.locator("#authenticator_secret").get_attribute("data-secret")
    page.fill("input[name=code]", totp_code(secret))
    page.click("#totp-activate-submit")
    page.wait_for_url(re.compile(r".*/accounts/2fa/.*"))
    page.goto(f"{live_server.url}/admin/")
    assert "Site administration" in page.content()
