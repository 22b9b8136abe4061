"""The permission matrix, generated from the code: every URL route, every ModelAdmin with its
actions, and every WebSocket route, for every role, against apps.accounts.policy.

- A route, admin or consumer that declares no policy fails here (the `test_every_…_declares…`
  tests), so a new one cannot slip in unguarded.
- For each route × role × method the answer must be the policy's: refused roles get 403 (or the
  login redirect when anonymous) and nothing is written; allowed roles are not refused.
- The auditor (read-only) and staff without MFA write nothing anywhere.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.accounts.models import User
from apps.accounts.policy import (
    POLICY,
    Capability,
    PolicyInline,
    PolicyModelAdmin,
    Role,
    view_policy,
)
from apps.accounts.tests.factories import AuditorUserFactory, MemberFactory, StaffUserFactory
from apps.audit.models import AuditLog
from config.routing import websocket_urlpatterns
from tests.fixtures.core import login_with_mfa

METHODS = ("GET", "POST")
DUMMY = {"int": "999999", "str": "x", "slug": "x", "path": "x", "uuid": "0" * 32}


def _routes(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            yield from _routes(entry, route, ns)
        elif isinstance(entry, URLPattern):
            yield route, namespace, entry


def _concrete(route: str) -> str:
    path = re.sub(r"<(?:(\w+):)?\w+>", lambda m: DUMMY[m.group(1) or "str"], route)
    return "/" + path.lstrip("^").rstrip("$")


def _checked_routes():
    for route, namespace, entry in _routes():
        if namespace == "admin" or route.startswith(("admin/", "static/", "media/")):
            continue
        if "(?P<" in route or "\\" in route:  # regex routes of third-party apps
            continue
        policy = view_policy(entry.callback)
        yield route, entry, policy


def test_every_route_declares_a_policy():
    missing = [
        f"{route} ({entry.callback.__module__}.{getattr(entry.callback, '__name__', '?')})"
        for route, entry, policy in _checked_routes()
        if policy is None
    ]
    assert missing == [], "routes without a permission policy: " + ", ".join(missing)


@pytest.fixture
def clients(db):
    """One logged-in client per role (staff and auditors with MFA passed, except the one
    without)."""
    member = MemberFactory().user
    auditor = AuditorUserFactory()
    staff = StaffUserFactory()
    no_mfa = StaffUserFactory()
    superuser = User.objects.create_superuser("root@example.test", "x-very-long-password-1")
    made = {Role.ANONYMOUS: Client()}
    made[Role.MEMBER] = Client()
    made[Role.MEMBER].force_login(member)
    for role, user in (
        (Role.AUDITOR, auditor),
        (Role.STAFF, staff),
        (Role.SUPERUSER, superuser),
    ):
        made[role] = Client()
        login_with_mfa(made[role], user)
    made[Role.STAFF_WITHOUT_MFA] = Client()
    made[Role.STAFF_WITHOUT_MFA].force_login(no_mfa)
    return made


def _refused(response) -> bool:
    if response.status_code == 403:
        return True
    location = response.get("Location", "") if response.status_code in (301, 302) else ""
    return (
        "/accounts/login/" in location
        or "/accounts/mfa/" in location
        or ("/accounts/2fa/" in location)
    )


@pytest.mark.django_db
def test_every_route_answers_each_role_as_the_policy_says(clients):
    wrong = []
    for route, _entry, policy in _checked_routes():
        if policy is None or policy == (Capability.PUBLIC, Capability.PUBLIC):
            continue
        url = _concrete(route)
        for role, client in clients.items():
            for method in METHODS:
                needed = policy[0] if method == "GET" else policy[1]
                allowed = needed in POLICY[role]
                before = AuditLog.objects.count()
                response = client.generic(method, url)
                refused = _refused(response)
                if allowed == refused:
                    wrong.append(f"{method} {url} as {role}: {response.status_code}")
                if not allowed and AuditLog.objects.count() != before:
                    wrong.append(f"{method} {url} as {role} wrote an audit row")
    assert wrong == [], "\n".join(wrong)


def test_every_admin_uses_the_policy_base_class():
    offenders = [
        f"{model._meta.label}: {type(model_admin).__name__}"
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, PolicyModelAdmin)
    ]
    inline_offenders = [
        f"{type(model_admin).__name__}.{inline.__name__}"
        for model_admin in admin.site._registry.values()
        for inline in model_admin.inlines
        if not issubclass(inline, PolicyInline)
    ]
    assert offenders == [] and inline_offenders == []


@pytest.mark.django_db
def test_auditors_and_staff_without_mfa_run_no_admin_action_and_see_none(clients, rf):
    superuser = User.objects.get(email="root@example.test")
    wrong = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        request = rf.get(changelist)
        request.user = superuser
        request.session = clients[Role.SUPERUSER].session
        actions = list(model_admin.get_actions(request))
        auditor = clients[Role.AUDITOR]
        page = auditor.get(changelist)
        if page.status_code == 200 and b'name="action"' in page.content:
            wrong.append(f"{opts.label}: the auditor is offered actions")
        for name in actions:
            for role in (Role.AUDITOR, Role.STAFF_WITHOUT_MFA, Role.MEMBER, Role.ANONYMOUS):
                before = AuditLog.objects.count()
                response = clients[role].post(
                    changelist, {"action": name, "_selected_action": ["1", "2"]}
                )
                if not _refused(response) and response.status_code != 302:
                    wrong.append(f"{opts.label} action {name} as {role}: {response.status_code}")
                if role is Role.AUDITOR and response.status_code != 403:
                    wrong.append(f"{opts.label} action {name} as auditor: {response.status_code}")
                if AuditLog.objects.count() != before:
                    wrong.append(f"{opts.label} action {name} as {role} wrote an audit row")
        add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        response = clients[Role.AUDITOR].post(add, {})
        if response.status_code != 403:
            wrong.append(f"{opts.label} add as auditor: {response.status_code}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.django_db
def test_admin_pages_follow_the_policy_for_reading(clients):
    for model, _model_admin in admin.site._registry.items():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert clients[Role.SUPERUSER].get(url).status_code == 200, url
        assert _refused(clients[Role.STAFF_WITHOUT_MFA].get(url)), url
        anonymous = clients[Role.ANONYMOUS].get(url)
        assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"], url
        member = clients[Role.MEMBER].get(url)
        assert member.status_code == 302 and "/admin/login/" in member["Location"], url


def test_every_websocket_consumer_declares_a_policy():
    missing = [
        str(route.pattern)
        for route in websocket_urlpatterns
        if not isinstance(getattr(route.callback, "consumer_class", None), type)
        or getattr(route.callback.consumer_class, "policy", None) is None
    ]
    assert missing == []


@pytest.mark.django_db(transaction=True)
def test_websocket_routes_answer_each_role_as_the_policy_says(clients):
    wrong = []

    async def attempt(path, session, user):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["session"] = session
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    for route in websocket_urlpatterns:
        capability = route.callback.consumer_class.policy
        path = _concrete(str(route.pattern))
        for role, client in clients.items():
            session = client.session
            user_id = session.get("_auth_user_id")  # loads the session here, synchronously
            user = User.objects.get(pk=user_id) if user_id else AnonymousUser()
            connected, code = async_to_sync(attempt)(path, session, user)
            allowed = capability in POLICY[role]
            if connected and not allowed:
                wrong.append(f"{path} accepted {role}")
            if not connected and code != 4403:
                wrong.append(f"{path} closed {role} with {code}, not 4403")
            if allowed and capability is not Capability.PORTAL and not connected:
                wrong.append(f"{path} refused {role}")
    assert wrong == [], "\n".join(wrong)
