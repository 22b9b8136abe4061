"""The portal shell's pages: login required, navigation by role, the auditor area."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db


def test_portal_pages_need_login(client):
    for name in ("portal:dashboard", "portal:wallet", "portal:profile", "portal:auditor"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


def test_navigation_lists_every_member_section(member_client):
    html = member_client.get(reverse("portal:dashboard")).content.decode()
    for label in (
        "Dashboard",
        "Meters",
        "Trading",
        "Statements",
        "Certificates",
        "Rewards",
        "Events",
        "Wallet",
        "My data",
    ):
        assert f">{label}" in html, label
    assert "Auditor area" not in html
    assert 'href="/admin/"' not in html


def test_auditor_sees_the_auditor_area_and_members_get_403(client, member_client, auditor_user):
    assert member_client.get(reverse("portal:auditor")).status_code == 403
    login_with_mfa(client, auditor_user)
    response = client.get(reverse("portal:auditor"))
    assert response.status_code == 200
    assert b"Auditor area" in response.content


def test_staff_see_admin_links(staff_client):
    html = staff_client.get(reverse("portal:dashboard")).content.decode()
    assert 'href="/admin/"' in html


def test_old_coming_links_lead_to_the_built_section_and_unknown_sections_404(member_client):
    response = member_client.get(reverse("portal:coming", kwargs={"section": "events"}))
    assert response.status_code == 302
    assert response["Location"] == reverse("grid:events")
    assert member_client.get(response["Location"]).status_code == 200
    assert member_client.get("/coming/nonsense/").status_code == 404
