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

from apps.accounts.testing import IsolationCase
from apps.accounts.tests.factories import MemberFactory
from tests.fixtures.core import login_with_mfa

PROJECT_APPS = (
    "accounts", "core", "meters", "market", "grid", "incentives", "compliance", "chain", "billing",
    "notifications", "governance",
)  # fmt: skip
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


# --- Cases for member URLs of apps that have not declared their own (an app's own
# `tests/isolation.py` takes precedence for the same URL name). -------------------------------


def _dr_event_url(name: str):
    def make(member):
        from datetime import timedelta

        from django.utils import timezone

        from apps.grid.models import DREvent, DRParticipation
        from apps.grid.tests.factories import ConnectionPointFactory

        start = timezone.now() + timedelta(hours=3)
        event = DREvent.objects.create(
            event_id=f"iso-{member.membership_number}",
            signal_name=DREvent.SignalName.SIMPLE,
            signal_type=DREvent.SignalType.LEVEL,
            start=start,
            end=start + timedelta(hours=1),
            status=DREvent.Status.PUBLISHED,
        )
        DRParticipation.objects.create(
            event=event, connection_point=ConnectionPointFactory(member=member)
        )
        return reverse(name, args=[event.pk])

    return make


def _certificate_claim_url(member):
    from datetime import UTC, datetime

    from apps.incentives.models import Certificate
    from apps.meters.tests.factories import MeterFactory

    start = datetime(2026, 6, 1, 10, tzinfo=UTC)
    cert = Certificate.objects.create(
        token_id=1,
        range_start=0,
        range_end=1000,
        owner=member,
        device=MeterFactory(member=member),
        energy_source="solar",
        production_start=start,
        production_end=start.replace(hour=11),
        country="DE",
        issuing_body="EnergySphere",
        market_zone="DE-LU",
        emission_factor=0,
    )
    return reverse("incentives:certificate_claim", args=[cert.pk])


def _meter_detail_url(member):
    from apps.meters.tests.factories import MeterFactory

    return reverse("meters:meter_detail", args=[MeterFactory(member=member).pk])


FALLBACK_CASES = [
    IsolationCase("meters:meter_detail", _meter_detail_url),
    IsolationCase("grid:event_detail", _dr_event_url("grid:event_detail")),
    IsolationCase("grid:event_opt", _dr_event_url("grid:event_opt"), "post", {"opt": "optIn"}),
    IsolationCase(
        "grid-api:event_opt",
        _dr_event_url("grid-api:event_opt"),
        "post",
        {"opt": "optIn"},
        content_type="application/json",
    ),
    IsolationCase(
        "incentives:certificate_claim", _certificate_claim_url, "post", {"beneficiary": "Me"}
    ),
]
# Parametrised URLs that are not member objects: staff/auditor pages. A member is refused them
# (checked below with these sample arguments).
FALLBACK_STAFF_ONLY = {
    "compliance:report": ["carbon"],
    "compliance:report_download": ["carbon", "csv"],
    "compliance:erasure_handle": [1],
    "incentives:registry_cancel": [1],
    "market:run_anchor": [1],
}


def _with_fallbacks(cases: list, exempt: dict[str, str]) -> tuple[list, dict[str, str]]:
    declared = {case.url_name for case in cases} | set(exempt)
    routable = _all_url_names()
    cases = cases + [
        c for c in FALLBACK_CASES if c.url_name not in declared and c.url_name in routable
    ]
    exempt = dict(exempt)
    for name in FALLBACK_STAFF_ONLY:
        if name not in declared and name in routable:
            exempt[name] = "staff/auditor only: members are refused (test below)"
    return cases, exempt


def _all_url_names(patterns=None, namespace: str | None = None) -> set[str]:
    names: set[str] = set()
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            names |= _all_url_names(entry.url_patterns, entry.namespace or namespace)
        elif entry.name:
            names.add(f"{namespace}:{entry.name}" if namespace else entry.name)
    return names


CASES, EXEMPT = _with_fallbacks(*_load_app_cases())


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


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url_name", [n for n in FALLBACK_STAFF_ONLY if n in _all_url_names()], ids=str
)
def test_staff_pages_with_parameters_refuse_members(client, url_name):
    member = MemberFactory()
    client.force_login(member.user)
    url = reverse(url_name, args=FALLBACK_STAFF_ONLY[url_name])
    assert client.get(url).status_code in (403, 404, 405)
    assert client.post(url, {"action": "erase", "reason": "x"}).status_code in (403, 404)


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
    login_with_mfa(client, staff)
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
