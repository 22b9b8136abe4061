"""Reads of the notifications app: a member's preferences, inbox and push subscriptions."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Member
from apps.notifications.models import (
    DEFAULTS,
    Channel,
    Kind,
    Notification,
    Preference,
    PushSubscription,
)


def notification_preferences(*, member: Member) -> dict[tuple[str, str], bool]:
    """Every (kind, channel) → enabled, the member's own choice or the default."""
    prefs: dict[tuple[str, str], bool] = {
        (kind, channel): channel in DEFAULTS[kind]
        for kind in Kind.values
        for channel in Channel.values
    }
    for kind, channel, enabled in Preference.objects.filter(member=member).values_list(
        "kind", "channel", "enabled"
    ):
        prefs[(kind, channel)] = enabled
    return prefs


def notification_channels(*, member: Member, kind: str) -> set[str]:
    prefs = notification_preferences(member=member)
    return {channel for channel in Channel.values if prefs[(kind, channel)]}


def member_inbox(*, member: Member, limit: int = 100) -> list[Notification]:
    return list(Notification.objects.filter(member=member, in_inbox=True)[:limit])


def member_unread_count(*, member: Member) -> int:
    return Notification.objects.filter(member=member, in_inbox=True, read_at__isnull=True).count()


def member_push_subscriptions(*, member: Member) -> QuerySet[PushSubscription]:
    return PushSubscription.objects.filter(member=member).order_by("pk")


def member_notifications_all(*, member: Member) -> QuerySet[Notification]:
    """Every notification of the member, inbox or not (the member data export)."""
    return Notification.objects.filter(member=member).order_by("created_at", "pk")
