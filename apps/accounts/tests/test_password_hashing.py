"""Passwords (apps/accounts/hashers.py): Argon2id with OWASP's parameters, earlier PBKDF2 hashes
upgraded at the next login, and no pooled database connection held while a password is hashed.

The suite hashes with MD5 for speed (config/settings/test.py); these tests put the production
hashers back."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, make_password
from django.db import connections, transaction

from apps.accounts.hashers import ReleasesConnectionsMixin, database_connections_release
from apps.accounts.models import User
from apps.accounts.tests.factories import DEFAULT_PASSWORD, MemberFactory

PRODUCTION_HASHERS = [
    "apps.accounts.hashers.CooperativeArgon2PasswordHasher",
    "apps.accounts.hashers.ReleasingPBKDF2PasswordHasher",
]
OWASP_ARGON2ID = "argon2$argon2id$v=19$m=19456,t=2,p=1$"


@pytest.fixture
def production_hashers(settings):
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS


def _login(client, email, password):
    return client.post(
        "/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR="198.51.100.9"
    )


@pytest.mark.django_db
def test_a_new_password_is_stored_as_argon2id_with_owasp_parameters(production_hashers):
    encoded = make_password(DEFAULT_PASSWORD)
    assert encoded.startswith(OWASP_ARGON2ID)
    user = MemberFactory().user
    user.set_password("another long passphrase")
    assert user.password.startswith(OWASP_ARGON2ID)
    assert user.check_password("another long passphrase")
    assert not user.check_password("another long passphrase!")


@pytest.mark.django_db
def test_a_pbkdf2_password_still_logs_in_and_is_rehashed_with_argon2id(client, settings):
    user = MemberFactory().user
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user.set_password(DEFAULT_PASSWORD)
    user.save(update_fields=["password"])
    assert user.password.startswith("pbkdf2_sha256$")
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS

    assert _login(client, user.email, "not the password").status_code == 200  # refused
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")  # a failed login upgrades nothing

    response = _login(client, user.email, DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    user.refresh_from_db()
    assert user.password.startswith(OWASP_ARGON2ID)
    client.logout()
    assert _login(client, user.email, DEFAULT_PASSWORD).status_code == 302  # the new hash works


@pytest.mark.django_db
def test_an_argon2_hash_with_weaker_parameters_is_rehashed_at_login(client, settings):
    user = MemberFactory().user
    settings.PASSWORD_HASHERS = ["apps.accounts.tests.test_password_hashing.WeakArgon2"]
    user.set_password(DEFAULT_PASSWORD)
    user.save(update_fields=["password"])
    assert "m=8192,t=1,p=1" in user.password
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    assert _login(client, user.email, DEFAULT_PASSWORD).status_code == 302
    user.refresh_from_db()
    assert user.password.startswith(OWASP_ARGON2ID)


class WeakArgon2(Argon2PasswordHasher):
    """Argon2 as some earlier deployment might have configured it."""

    time_cost = 1
    memory_cost = 8192
    parallelism = 1


class _RecordsConnection(Argon2PasswordHasher):
    """Notes whether this thread held a database connection when the hash was computed."""

    held: list[bool] = []

    def verify(self, password: str, encoded: str) -> bool:
        self.held.append(connections["default"].connection is not None)
        return super().verify(password, encoded)


class ObservedArgon2(ReleasesConnectionsMixin, _RecordsConnection):
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1


@pytest.mark.django_db(transaction=True)
def test_a_login_holds_no_database_connection_while_the_password_is_hashed(client, settings):
    """Outside a transaction the pooled connection goes back to the pool before hashing (a burst
    of logins used to hold every pooled connection for 0.4 s of PBKDF2 each)."""
    assert connections["default"].pool  # the suite runs with the pool, as production does
    settings.PASSWORD_HASHERS = ["apps.accounts.tests.test_password_hashing.ObservedArgon2"]
    user = MemberFactory().user
    user.set_password(DEFAULT_PASSWORD)
    user.save(update_fields=["password"])
    _RecordsConnection.held.clear()
    response = _login(client, user.email, DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert _RecordsConnection.held == [False]
    assert User.objects.filter(pk=user.pk, last_login__isnull=False).exists()  # DB used after


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_connection_is_kept():
    with transaction.atomic():
        user = MemberFactory().user
        assert database_connections_release() == 0
        assert connections["default"].connection is not None
        assert User.objects.filter(pk=user.pk).exists()  # still the same transaction
    assert database_connections_release() == 1
    assert connections["default"].connection is None


@pytest.mark.django_db
def test_a_login_finding_every_hashing_slot_taken_is_told_to_retry_and_not_counted(
    client, settings, production_hashers
):
    """A login storm beyond PASSWORD_HASH_CONCURRENCY: a login that waited its
    PASSWORD_HASH_WAIT_SECONDS for a hashing slot is answered 503 with Retry-After (not a 500
    after 30 s waiting for a pooled connection), and django-axes counts no failure: the same
    login succeeds once a slot is free."""
    from axes.models import AccessAttempt

    from apps.accounts.hashers import _semaphore

    settings.PASSWORD_HASH_CONCURRENCY = 1
    settings.PASSWORD_HASH_WAIT_SECONDS = 0.2
    user = MemberFactory().user
    user.set_password(DEFAULT_PASSWORD)
    user.save(update_fields=["password"])
    slots = _semaphore(1)
    assert slots.acquire(timeout=5)  # another login is hashing
    try:
        busy = _login(client, user.email, DEFAULT_PASSWORD)
    finally:
        slots.release()
    assert busy.status_code == 503
    assert busy["Retry-After"] == "1"
    assert "Too many logins at once" in busy.content.decode()
    assert not AccessAttempt.objects.exists()
    assert "_auth_user_id" not in client.session
    response = _login(client, user.email, DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_hashing_runs_at_most_the_configured_number_at_once(settings, monkeypatch):
    """PASSWORD_HASH_CONCURRENCY bounds the hashes in flight in a process (threads)."""
    import threading
    import time

    from apps.accounts.hashers import CooperativeArgon2PasswordHasher

    settings.PASSWORD_HASH_CONCURRENCY = 2
    settings.PASSWORD_HASH_WAIT_SECONDS = 30
    in_flight, peak, lock = [0], [0], threading.Lock()

    def observed(original):
        def run(*args, **kwargs):
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.05)
            try:
                return original(*args, **kwargs)
            finally:
                with lock:
                    in_flight[0] -= 1

        return run

    monkeypatch.setattr(Argon2PasswordHasher, "encode", observed(Argon2PasswordHasher.encode))
    hasher = CooperativeArgon2PasswordHasher()
    threads = [threading.Thread(target=hasher.encode, args=("pw", hasher.salt())) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert peak[0] == 2
