"""Staff/auditor TOTP is set up only through a superuser's enrollment link: signed, expiring,
single-use, for one account; superusers alone issue links, reset MFA (audited) and administer
privileged accounts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core import signing
from django.urls import reverse

from apps.accounts.models import MFAEnrollment, User
from apps.accounts.services import (
    ENROLLMENT_SALT,
    mfa_enrollment_issue,
    mfa_reset,
)
from apps.accounts.tests.factories import DEFAULT_PASSWORD, StaffUserFactory
from apps.audit.models import AuditLog
from apps.core.exceptions import ApplicationError
from tests.fixtures.browser import totp_code
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return User.objects.create_superuser("root@example.test", DEFAULT_PASSWORD)


def _login(client, user):
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302


def _enroll(client, token):
    return client.get(reverse("mfa_enroll", args=[token]))


@pytest.mark.django_db(transaction=True)  # allauth sends authenticator_added on commit
def test_a_link_enrols_its_account_once_and_is_audited(client, superuser):
    staff = StaffUserFactory()
    token = mfa_enrollment_issue(user=staff, actor=superuser)
    _login(client, staff)
    assert _enroll(client, token)["Location"] == reverse("mfa_activate_totp")
    assert client.get(reverse("mfa_activate_totp")).status_code == 200
    secret = client.session["mfa.totp.secret"]
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=staff, type="totp").exists()
    enrollment = MFAEnrollment.objects.get(user=staff)
    assert enrollment.redeemed_at and enrollment.completed_at
    assert enrollment.issued_by == superuser
    events = list(
        AuditLog.objects.filter(target_id=str(staff.pk), event__startswith="mfa_enrollment.")
        .order_by("id")
        .values_list("event", flat=True)
    )
    assert events == [
        "mfa_enrollment.issued",
        "mfa_enrollment.redeemed",
        "mfa_enrollment.completed",
    ]
    assert client.get("/admin/").status_code == 200


def test_a_used_link_is_refused(client, superuser):
    staff = StaffUserFactory()
    token = mfa_enrollment_issue(user=staff, actor=superuser)
    _login(client, staff)
    assert _enroll(client, token).status_code == 302
    client.logout()
    _login(client, staff)
    again = _enroll(client, token)
    assert again.status_code == 410
    assert b"already been used" in again.content


def test_an_expired_link_is_refused_and_writes_nothing(client, superuser, settings):
    staff = StaffUserFactory()
    token = mfa_enrollment_issue(user=staff, actor=superuser)
    MFAEnrollment.objects.filter(user=staff).update(
        expires_at=MFAEnrollment.objects.get(user=staff).created_at - timedelta(seconds=1)
    )
    _login(client, staff)
    response = _enroll(client, token)
    assert response.status_code == 410
    assert b"expired" in response.content
    assert MFAEnrollment.objects.get(user=staff).redeemed_at is None
    # The signature's own age is checked too (a link older than the TTL).
    settings.MFA_ENROLLMENT_TTL_HOURS = 0
    fresh = mfa_enrollment_issue(user=staff, actor=superuser)
    assert _enroll(client, fresh).status_code == 410
    assert client.get(reverse("mfa_activate_totp"))["Location"] == reverse(
        "mfa_enrollment_required"
    )


def test_a_link_for_another_account_is_refused(client, superuser):
    target, other = StaffUserFactory(), StaffUserFactory()
    token = mfa_enrollment_issue(user=target, actor=superuser)
    _login(client, other)
    response = _enroll(client, token)
    assert response.status_code == 403
    assert b"another account" in response.content
    assert MFAEnrollment.objects.get(user=target).redeemed_at is None
    assert client.get(reverse("mfa_activate_totp"))["Location"] == reverse(
        "mfa_enrollment_required"
    )


def test_a_forged_link_is_refused(client, superuser):
    staff = StaffUserFactory()
    mfa_enrollment_issue(user=staff, actor=superuser)
    nonce = MFAEnrollment.objects.get(user=staff).nonce
    _login(client, staff)
    forged = signing.dumps({"u": staff.pk, "n": nonce}, salt=ENROLLMENT_SALT, key="not-ours")
    assert _enroll(client, forged).status_code == 400
    assert _enroll(client, "garbage").status_code == 400
    assert MFAEnrollment.objects.get(user=staff).redeemed_at is None


def test_an_anonymous_visitor_is_sent_to_log_in_and_the_link_is_not_spent(client, superuser):
    staff = StaffUserFactory()
    token = mfa_enrollment_issue(user=staff, actor=superuser)
    response = _enroll(client, token)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert MFAEnrollment.objects.get(user=staff).redeemed_at is None


def test_only_superusers_issue_links_and_reset_mfa(superuser):
    staff, colleague = StaffUserFactory(), StaffUserFactory()
    with pytest.raises(ApplicationError):
        mfa_enrollment_issue(user=colleague, actor=staff)
    with pytest.raises(ApplicationError):
        mfa_reset(user=colleague, actor=staff)
    assert not MFAEnrollment.objects.exists()


def test_superuser_reset_removes_authenticators_audited_and_issues_a_link(superuser):
    staff = StaffUserFactory()
    TOTP.activate(staff, generate_totp_secret())
    token = mfa_reset(user=staff, actor=superuser)
    assert token
    assert not Authenticator.objects.filter(user=staff).exists()
    log = AuditLog.objects.get(event="mfa.reset", target_id=str(staff.pk))
    assert log.actor == superuser
    assert log.details["removed"] == ["totp"]
    assert MFAEnrollment.objects.filter(user=staff, redeemed_at__isnull=True).count() == 1


def test_staff_cannot_administer_privileged_accounts_or_see_the_mfa_actions(client, superuser):
    staff = StaffUserFactory()
    login_with_mfa(client, staff)
    change_password = reverse("admin:auth_user_password_change", args=[superuser.pk])
    assert client.get(change_password).status_code == 403
    response = client.post(
        change_password,
        {"password1": "taken-over-Passw0rd!", "password2": "taken-over-Passw0rd!"},
    )
    assert response.status_code == 403
    superuser.refresh_from_db()
    assert superuser.check_password(DEFAULT_PASSWORD)
    changelist = client.get(reverse("admin:accounts_user_changelist"))
    assert b"issue_mfa_enrollment" not in changelist.content
    action = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "reset_mfa", "_selected_action": [superuser.pk]},
    )
    assert action.status_code in (200, 302)
    assert not MFAEnrollment.objects.exists()
    assert not AuditLog.objects.filter(event="mfa.reset").exists()
