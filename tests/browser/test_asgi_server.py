"""The daphne-based `asgi_live_server` fixture serves pages, static files and WebSockets on the
test database (the meters app uses it for live dashboard updates)."""

from __future__ import annotations

import pytest

from apps.accounts.tests.factories import DEFAULT_PASSWORD, MemberFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_member_logs_in_on_the_asgi_server(asgi_live_server, page):
    member = MemberFactory(legal_name="Ada Ampere")
    page.goto(f"{asgi_live_server.url}/accounts/login/")
    page.fill("input[name=login]", member.user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{asgi_live_server.url}/")
    assert "Ada Ampere" in page.locator("#member-line").inner_text()
    css = page.request.get(f"{asgi_live_server.url}/static/css/portal.css")
    assert css.status == 200
    assert "--brand" in css.text()
