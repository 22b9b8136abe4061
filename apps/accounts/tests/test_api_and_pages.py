from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db


def test_me_returns_the_members_own_profile(member_client, member):
    response = member_client.get("/api/accounts/me/")
    assert response.status_code == 200
    body = response.json()
    assert body["membership_number"] == member.membership_number
    assert body["email"] == member.user.email
    assert body["legal_name"] == member.legal_name


def test_me_requires_login(client):
    assert client.get("/api/accounts/me/").status_code == 403


def test_me_is_404_for_accounts_without_membership(client, auditor_user):
    login_with_mfa(client, auditor_user)
    assert client.get("/api/accounts/me/").status_code == 404


def test_login_page_is_styled_and_has_no_signup_link(client):
    html = client.get(reverse("account_login")).content.decode()
    assert "/static/css/portal.css" in html
    assert 'id="login-form"' in html
    assert "sign up" not in html.lower()


def test_audit_log_admin_is_read_only(staff_client, member):
    log = audit_log_write(event=AuditEvent.REPORT_VERIFIED, target=member, details={"x": 1})
    listing = staff_client.get("/admin/audit/auditlog/")
    assert listing.status_code == 200
    assert b"report.verified" in listing.content
    assert staff_client.get("/admin/audit/auditlog/add/").status_code == 403
    detail = staff_client.get(f"/admin/audit/auditlog/{log.pk}/change/")
    assert detail.status_code == 200
    assert b'name="event"' not in detail.content  # no editable field
    response = staff_client.post(f"/admin/audit/auditlog/{log.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403


def test_member_admin_search_and_filters(staff_client, member, other_member):
    response = staff_client.get("/admin/accounts/member/", {"q": member.membership_number})
    assert response.status_code == 200
    assert member.legal_name.encode() in response.content
    assert other_member.legal_name.encode() not in response.content
    response = staff_client.get("/admin/accounts/member/", {"kind__exact": "prosumer"})
    assert response.status_code == 200


def test_wallet_nonce_admin_is_read_only(staff_client):
    assert staff_client.get("/admin/accounts/walletnonce/").status_code == 200
    assert staff_client.get("/admin/accounts/walletnonce/add/").status_code == 403


def test_staff_cannot_grant_themselves_superuser_in_the_admin(staff_client, staff_user):
    url = f"/admin/accounts/user/{staff_user.pk}/change/"
    page = staff_client.get(url)
    assert page.status_code == 200
    assert b'name="is_superuser"' not in page.content
    staff_client.post(
        url,
        {
            "email": staff_user.email,
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "member-TOTAL_FORMS": "0",
            "member-INITIAL_FORMS": "0",
        },
    )
    staff_user.refresh_from_db()
    assert not staff_user.is_superuser
