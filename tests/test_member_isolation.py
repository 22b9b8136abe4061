"""A member only ever sees their own data: another member's object is 404, never 403 or 200.

How it works (see docs/portal.md, "Member isolation"):
- Each app lists its cases in `apps/<app>/tests/isolation.py`:
      ISOLATION_CASES = [IsolationCase("meters:meter_detail", make_url)]
  (IsolationCase from apps.accounts.testing) where `make_url(member) -> str` creates an object
  owned by `member` and returns its URL, and
      ISOLATION_EXEMPT = {"meters:ingest": "staff only"}
  for parametrised URLs that are not member objects.
- This module collects them; for each case the owner gets a non-error response and another
  member gets 404.
- `test_every_parametrised_member_url_has_a_case` walks the URL configuration and fails for any
  URL with parameters (outside the admin and allauth) that has neither a case nor an exemption.
- Pages without parameters resolve the member from the session; the accounts ones are checked
  below for not showing another member's data.
"""

from __future__ import annotations

from importlib import import_module

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.accounts.tests.factories import MemberFactory

PROJECT_APPS = ("accounts", "core", "meters", "market", "grid", "incentives", "compliance", "chain")
# Namespaces that are not member-facing.
NON_MEMBER_NAMESPACES = {"admin", "djdt"}


def _load_app_cases() -> tuple[list, dict[str, str]]:
    cases: list = []
    exempt: dict[str, str] = {}
    for app in PROJECT_APPS:
        try:
            module = import_module(f"apps.{app}.tests.isolation")
        except ModuleNotFoundError as exc:
            if exc.name != f"apps.{app}.tests.isolation":
                raise
            continue
        cases.extend(getattr(module, "ISOLATION_CASES", []))
        exempt.update(getattr(module, "ISOLATION_EXEMPT", {}))
    return cases, exempt


CASES, EXEMPT = _load_app_cases()


def _parametrised_url_names(patterns=None, namespace: str | None = None) -> set[str]:
    """Names of URL patterns that take parameters, with their namespace."""
    names: set[str] = set()
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            inner = entry.namespace or namespace
            if entry.namespace in NON_MEMBER_NAMESPACES:
                continue
            if inner is None and entry.app_name is None and not entry.namespace:
                # allauth and other third-party includes without a namespace
                module = getattr(entry.urlconf_module, "__name__", "")
                if not str(module).startswith("apps."):
                    continue
            names |= _parametrised_url_names(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern):
            regex = entry.pattern.regex
            if regex.groups and entry.name:
                names.add(f"{namespace}:{entry.name}" if namespace else entry.name)
    return names


def test_every_parametrised_member_url_has_a_case():
    covered = {case.url_name for case in CASES} | set(EXEMPT)
    missing = sorted(_parametrised_url_names() - covered)
    assert not missing, (
        "URLs with parameters and no member-isolation case; add an IsolationCase (or an "
        f"ISOLATION_EXEMPT reason) in apps/<app>/tests/isolation.py: {missing}"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=str)
def test_another_members_object_is_404(client, case):
    owner, intruder = MemberFactory(), MemberFactory()
    url = case.make_url(owner)
    extra = {"content_type": case.content_type} if case.content_type else {}

    def send():
        return getattr(client, case.method)(url, case.data, **extra)

    client.force_login(owner.user)
    assert send().status_code < 400, f"owner cannot open {url}"

    client.force_login(intruder.user)
    assert send().status_code == 404, f"another member reached {url}"


# --- accounts: pages resolving the member from the session -----------------------------------

SELF_PAGES = [
    "portal:dashboard",
    "portal:profile",
    "portal:wallet",
    "accounts-api:me",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", SELF_PAGES)
def test_self_pages_show_only_the_logged_in_members_data(client, url_name):
    me = MemberFactory(wallet_address="0x" + "a1" * 20)
    other = MemberFactory(wallet_address="0x" + "b2" * 20)
    client.force_login(me.user)
    response = client.get(reverse(url_name))
    assert response.status_code == 200
    body = response.content.decode()
    assert me.membership_number in body
    assert other.membership_number not in body
    assert other.legal_name not in body
    assert other.wallet_address not in body
    assert other.user.email not in body


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["portal:profile", "portal:wallet", "accounts-api:me"])
def test_accounts_without_membership_get_404_not_someone_elses_data(client, url_name):
    from apps.accounts.tests.factories import StaffUserFactory

    MemberFactory()
    staff = StaffUserFactory()
    client.force_login(staff)
    assert client.get(reverse(url_name)).status_code == 404


@pytest.mark.django_db
def test_wallet_nonce_of_another_member_is_refused(client):
    from eth_account import Account
    from eth_account.messages import encode_defunct

    owner, intruder = MemberFactory(), MemberFactory()
    account = Account.create()
    client.force_login(owner.user)
    message = client.post(
        "/api/accounts/wallet/challenge/",
        {"address": account.address},
        content_type="application/json",
    ).json()["message"]
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    client.force_login(intruder.user)
    response = client.post(
        "/api/accounts/wallet/link/",
        {"message": message, "signature": signature},
        content_type="application/json",
    )
    assert response.status_code == 400
    intruder.refresh_from_db()
    assert intruder.wallet_address == ""
