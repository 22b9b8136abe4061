"""Login throttling (django-axes): a password guesser is locked out after AXES_FAILURE_LIMIT
failures, on the portal login and on the admin login, without locking the member out from
elsewhere; a success before the limit clears the count."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.conf import settings

from apps.accounts.tests.factories import DEFAULT_PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db

GUESSER = "203.0.113.7"
OWNER = "198.51.100.20"


def _portal_login(client, email, password, ip):
    return client.post("/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR=ip)


def test_portal_login_locks_the_guesser_out_and_not_the_owner(client):
    email = MemberFactory().user.email
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _portal_login(client, email, "wrong password", GUESSER)
        assert response.status_code == 200  # the form again, with its error
    assert _portal_login(client, email, "wrong password", GUESSER).status_code == 429
    # Locked out: even the right password is refused from that client, and no session starts.
    again = _portal_login(client, email, DEFAULT_PASSWORD, GUESSER)
    assert again.status_code == 429
    assert "_auth_user_id" not in client.session
    # The owner, from another address, still logs in.
    owner = _portal_login(client, email.upper(), DEFAULT_PASSWORD, OWNER)
    assert owner.status_code == 302
    assert client.session["_auth_user_id"]


def test_admin_login_is_throttled_too(client):
    email = MemberFactory().user.email
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/admin/login/?next=/admin/",
            {"username": email, "password": "wrong password"},
            REMOTE_ADDR=GUESSER,
        )
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": email, "password": DEFAULT_PASSWORD},
        REMOTE_ADDR=GUESSER,
    )
    assert response.status_code == 429


def test_a_successful_login_clears_earlier_failures(client):
    email = MemberFactory().user.email
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _portal_login(client, email, "wrong password", GUESSER)
    assert _portal_login(client, email, DEFAULT_PASSWORD, GUESSER).status_code == 302
    client.logout()
    assert not AccessAttempt.objects.filter(username=email.lower()).exists()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _portal_login(client, email, "wrong password", GUESSER).status_code == 200
