"""Staff must set up TOTP and pass it in the session before the admin (HTTP level; the browser
test in tests/browser drives the real login pages)."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.urls import reverse

from apps.accounts.services import mfa_enrollment_issue
from tests.fixtures.browser import totp_code
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db


def _current_code(secret: str) -> str:
    return totp_code(secret)  # waits out the end of a 30-s window, so the code stays valid


def test_staff_without_totp_cannot_enrol_with_a_password_alone(client, staff_user):
    """No trust on first use: without an enrollment link staff are told how to get one, and the
    activation page itself is closed to them."""
    client.force_login(staff_user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_enrollment_required")
    activate = client.get(reverse("mfa_activate_totp"))
    assert activate["Location"] == reverse("mfa_enrollment_required")
    forced = client.post(reverse("mfa_activate_totp"), {"code": "123456"})
    assert forced["Location"] == reverse("mfa_enrollment_required")
    assert not Authenticator.objects.filter(user=staff_user).exists()
    page = client.get(reverse("mfa_enrollment_required"))
    assert page.status_code == 200
    assert b"enrollment link" in page.content


def test_staff_with_totp_but_session_without_mfa_must_prove_a_code(client, staff_user):
    TOTP.activate(staff_user, generate_totp_secret())
    client.force_login(staff_user)  # a session that never passed the TOTP stage
    response = client.get("/admin/accounts/member/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))
    assert "next=%2Fadmin%2Faccounts%2Fmember%2F" in response["Location"]


def test_staff_who_passed_totp_reaches_the_admin(client, staff_user):
    login_with_mfa(client, staff_user)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert b"Site administration" in response.content


def test_password_login_of_staff_with_totp_stops_at_the_code_stage(
    client, staff_user, default_password
):
    secret = generate_totp_secret()
    TOTP.activate(staff_user, secret)
    response = client.post(
        reverse("account_login"), {"login": staff_user.email, "password": default_password}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    # Not logged in yet: the admin still sends us to log in.
    assert client.get("/admin/").status_code == 302
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("mfa_authenticate"), {"code": _current_code(secret)})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db(transaction=True)  # allauth sends authenticator_added on commit
def test_activating_totp_in_the_session_counts_as_passing_it(client, staff_user, default_password):
    token = mfa_enrollment_issue(user=staff_user, actor="console")
    response = client.post(
        reverse("account_login"), {"login": staff_user.email, "password": default_password}
    )
    assert client.get(reverse("mfa_enroll", args=[token]))["Location"] == reverse(
        "mfa_activate_totp"
    )
    assert client.get("/admin/")["Location"] == reverse("mfa_activate_totp")
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    assert b"Staff accounts must use two-factor authentication" in page.content
    secret = client.session["mfa.totp.secret"]
    response = client.post(reverse("mfa_activate_totp"), {"code": _current_code(secret)})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=staff_user, type="totp").exists()
    assert client.get("/admin/").status_code == 200


def test_wrong_code_does_not_log_staff_in(client, staff_user, default_password):
    secret = generate_totp_secret()
    TOTP.activate(staff_user, secret)
    client.post(reverse("account_login"), {"login": staff_user.email, "password": default_password})
    wrong = f"{(int(_current_code(secret)) + 1) % 1_000_000:06d}"
    response = client.post(reverse("mfa_authenticate"), {"code": wrong})
    assert response.status_code == 200  # form re-rendered with an error
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_staff_cannot_remove_their_totp(client, staff_user):
    login_with_mfa(client, staff_user)
    from allauth.mfa.adapter import get_adapter

    authenticator = Authenticator.objects.get(user=staff_user, type="totp")
    assert get_adapter().can_delete_authenticator(authenticator) is False


def test_members_are_not_asked_for_totp(client, member, default_password):
    response = client.post(
        reverse("account_login"), {"login": member.user.email, "password": default_password}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:dashboard")
    assert client.get("/").status_code == 200


@pytest.fixture
def production_scope(settings):
    settings.STAFF_MFA_SCOPE = "all"  # what base/local/production use


def test_in_production_scope_staff_without_totp_can_do_nothing_else(
    production_scope, client, staff_user
):
    client.force_login(staff_user)
    for path in ("/", "/profile/", "/coming/meters/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == reverse("mfa_enrollment_required")
    api = client.get("/api/accounts/me/")
    assert api.status_code == 403
    assert "two-factor" in api.json()["detail"]
    # The page that explains how to enrol stays reachable (no redirect loop).
    assert client.get(reverse("mfa_enrollment_required")).status_code == 200


def test_in_production_scope_staff_who_passed_totp_and_members_are_not_disturbed(
    production_scope, client, staff_user, member
):
    login_with_mfa(client, staff_user)
    assert client.get("/").status_code == 200
    client.force_login(member.user)
    assert client.get("/").status_code == 200
    assert client.get("/api/accounts/me/").status_code == 200


def test_in_production_scope_a_session_that_skipped_the_code_must_prove_it(
    production_scope, client, staff_user
):
    TOTP.activate(staff_user, generate_totp_secret())
    client.force_login(staff_user)
    response = client.get("/wallet/")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('mfa_reauthenticate')}?next=%2Fwallet%2F"
