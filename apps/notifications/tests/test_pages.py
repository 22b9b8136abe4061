"""The member's notification pages: preferences saved per kind × channel, the browser's push
subscription stored (and refused when malformed), the inbox marked read, the unread count in the
navigation."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.notifications.models import Kind, PushSubscription
from apps.notifications.selectors import notification_preferences
from apps.notifications.services import notify

pytestmark = pytest.mark.django_db

P256_POINT = "B" + "A" * 86  # 65 bytes, base64url
AUTH = "A" * 22  # 16 bytes, base64url


def test_preferences_are_saved_for_exactly_the_ticked_pairs(member_client, member):
    page = member_client.get(reverse("notifications:preferences"))
    assert page.status_code == 200
    assert 'data-vapid-key="' in page.content.decode()
    member_client.post(
        reverse("notifications:preferences"), {"pref": ["dr_event:inbox", "statement:email"]}
    )
    prefs = notification_preferences(member=member)
    assert {pair for pair, on in prefs.items() if on} == {
        ("dr_event", "inbox"),
        ("statement", "email"),
    }


def test_a_browser_subscribes_and_unsubscribes(member_client, member):
    url = reverse("notifications:push_subscription")
    sub = {"endpoint": "https://push.example/abc", "keys": {"p256dh": P256_POINT, "auth": AUTH}}
    answer = member_client.post(url, json.dumps(sub), content_type="application/json")
    assert answer.status_code == 201
    assert PushSubscription.objects.get().member == member
    bad = {**sub, "keys": {"p256dh": "short", "auth": AUTH}}
    assert (
        member_client.post(url, json.dumps(bad), content_type="application/json").status_code == 400
    )
    gone = {"endpoint": sub["endpoint"], "unsubscribe": True}
    member_client.post(url, json.dumps(gone), content_type="application/json")
    assert not PushSubscription.objects.exists()


def test_the_inbox_shows_the_unread_count_and_marks_read(member_client, member):
    notify(member=member, kind=Kind.STATEMENT, subject="Your statement for October is ready")
    dashboard = member_client.get(reverse("portal:dashboard")).content.decode()
    assert 'id="unread-badge">1<' in dashboard
    inbox = member_client.get(reverse("notifications:inbox")).content.decode()
    assert "Your statement for October is ready" in inbox and "1 unread" in inbox
    member_client.post(reverse("notifications:inbox"))
    assert "0 unread" in member_client.get(reverse("notifications:inbox")).content.decode()
