"""Notification services: `notify` (inbox row + one delivery per channel, sent after the commit
by Celery), delivery with retries, preferences, push subscriptions and the inbox.

Every other app calls `notify(member=, kind=, subject=, body=, link=)` from inside its own write
transaction; nothing is sent for a write that rolls back, and no request waits for a mail server
or a push service.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.notifications import vapid
from apps.notifications.lock_objects import delivery_lock
from apps.notifications.models import (
    Channel,
    Delivery,
    Kind,
    Notification,
    Preference,
    PushSubscription,
)
from apps.notifications.selectors import notification_channels

#: Members who left get nothing.
_REACHABLE = (Member.Status.APPLICANT, Member.Status.ACTIVE, Member.Status.SUSPENDED)


def _enqueue(delivery_ids: list[int]) -> None:
    if settings.NOTIFICATIONS_ENQUEUE:
        from apps.notifications.tasks import notification_deliver_task

        for delivery_id in delivery_ids:
            notification_deliver_task.delay(delivery_id)
    else:
        for delivery_id in delivery_ids:
            notification_deliver(delivery_id=delivery_id)


@transaction.atomic
def notify(
    *,
    member: Member,
    kind: str,
    subject: str,
    body: str = "",
    link: str = "",
    dedup_key: str = "",
    exclude_channels: frozenset[str] = frozenset(),
    actor: Actor = None,
) -> Notification | None:
    """Notify one member on the channels they chose for `kind`: an inbox row, an e-mail and a
    web push per subscribed browser, each sent by its own task after the commit. Returns None
    (and writes nothing) for a member who left or turned every channel off for `kind`, or when
    `dedup_key` was notified already. `exclude_channels`: channels the caller serves itself
    (billing e-mails its documents with the PDF attached)."""
    if kind not in Kind.values:
        raise ApplicationError("Unknown notification kind.", {"kind": kind})
    if member.status not in _REACHABLE:
        return None
    channels = notification_channels(member=member, kind=kind) - exclude_channels
    if not channels:
        return None
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                member=member,
                kind=kind,
                subject=subject[:200],
                body=body,
                link=link[:500],
                in_inbox=Channel.INBOX in channels,
                dedup_key=dedup_key[:200],
            )
    except IntegrityError:
        if dedup_key:
            return None
        raise
    deliveries: list[Delivery] = []
    if Channel.EMAIL in channels and member.user.email:
        deliveries.append(Delivery(notification=notification, channel=Channel.EMAIL))
    if Channel.WEBPUSH in channels:
        deliveries += [
            Delivery(notification=notification, channel=Channel.WEBPUSH, subscription=sub)
            for sub in PushSubscription.objects.filter(member=member).order_by("pk")
        ]
    Delivery.objects.bulk_create(deliveries)
    audit_log_write(
        event=AuditEvent.NOTIFICATION_CREATED,
        actor=actor,
        target=notification,
        details={
            "member": member.membership_number,
            "kind": kind,
            "inbox": notification.in_inbox,
            "deliveries": [d.channel for d in deliveries],
        },
    )
    ids = [d.pk for d in deliveries]
    if ids:
        transaction.on_commit(lambda: _enqueue(ids))
    return notification


def notify_many(
    *, members: list[Member], kind: str, subject: str, body: str = "", link: str = "", **kw: Any
) -> int:
    """`notify` for each member; returns how many were notified."""
    return sum(
        notify(member=m, kind=kind, subject=subject, body=body, link=link, **kw) is not None
        for m in members
    )


class PushGone(Exception):
    """The push service says the subscription no longer exists (404/410)."""


def _send_email(delivery: Delivery) -> None:
    notification = delivery.notification
    body = notification.body
    if notification.link:
        body = f"{body}\n\n{notification.link}".strip()
    EmailMessage(
        subject=notification.subject, body=body, to=[notification.member.user.email]
    ).send()


def _send_push(delivery: Delivery) -> None:
    from py_vapid import Vapid02
    from pywebpush import WebPushException, webpush

    subscription = delivery.subscription
    if subscription is None:
        raise PushGone("the subscription was removed")
    notification = delivery.notification
    payload = json.dumps(
        {
            "title": notification.subject,
            "body": notification.body[:500],
            "url": notification.link or "/notifications/",
            "kind": notification.kind,
        }
    )
    try:
        webpush(
            subscription_info={
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            },
            data=payload,
            vapid_private_key=Vapid02(private_key=vapid.private_key()),
            vapid_claims={"sub": settings.VAPID_SUBJECT},
            ttl=24 * 3600,
            timeout=settings.NOTIFICATIONS_PUSH_TIMEOUT_S,
        )
    except WebPushException as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (404, 410):
            raise PushGone(f"push service answered {status}") from exc
        raise


@transaction.atomic
def notification_deliver(*, delivery_id: int, final_attempt: bool = True) -> str:
    """Send one pending delivery. Returns its status: "sent", "failed" (gone for good, or the
    last attempt failed) or "retry" (a transient failure, recorded; the task tries again)."""
    delivery = delivery_lock(delivery_id)
    if delivery.status != Delivery.Status.PENDING:
        return str(delivery.status)
    delivery.attempts += 1
    details = {"channel": delivery.channel, "attempts": delivery.attempts}
    try:
        if delivery.channel == Channel.EMAIL:
            _send_email(delivery)
        elif delivery.channel == Channel.WEBPUSH:
            _send_push(delivery)
        else:  # pragma: no cover - the inbox is the notification row itself
            raise ApplicationError("Nothing to deliver on this channel.")
    except PushGone as exc:
        delivery.last_error = str(exc)[:300]
        if delivery.subscription is not None:
            delivery.subscription.delete()
        delivery.subscription = None
        delivery.transition_to(
            Delivery.Status.FAILED,
            actor="notifications",
            event=AuditEvent.NOTIFICATION_DELIVERY_FAILED,
            details={**details, "error": delivery.last_error},
            update_fields=["attempts", "last_error", "subscription"],
        )
        return str(delivery.status)
    except Exception as exc:  # noqa: BLE001 - any send failure is recorded and retried
        delivery.last_error = f"{exc.__class__.__name__}: {exc}"[:300]
        if not final_attempt:
            delivery.save(update_fields=["attempts", "last_error"])
            return "retry"
        delivery.transition_to(
            Delivery.Status.FAILED,
            actor="notifications",
            event=AuditEvent.NOTIFICATION_DELIVERY_FAILED,
            details={**details, "error": delivery.last_error},
            update_fields=["attempts", "last_error"],
        )
        return str(delivery.status)
    delivery.sent_at = timezone.now()
    delivery.last_error = ""
    delivery.transition_to(
        Delivery.Status.SENT,
        actor="notifications",
        event=AuditEvent.NOTIFICATION_DELIVERY_SENT,
        details=details,
        update_fields=["attempts", "last_error", "sent_at"],
    )
    return str(delivery.status)


@transaction.atomic
def notification_preferences_update(
    *, member: Member, enabled: set[tuple[str, str]], actor: Actor = None
) -> None:
    """Store the member's choice for every (kind, channel): on exactly the pairs in `enabled`."""
    unknown = {pair for pair in enabled if pair[0] not in Kind.values or pair[1] not in Channel}
    if unknown:
        raise ApplicationError("Unknown notification kind or channel.", {"pairs": sorted(unknown)})
    rows = [
        Preference(member=member, kind=kind, channel=channel, enabled=(kind, channel) in enabled)
        for kind in Kind.values
        for channel in Channel.values
    ]
    Preference.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["member", "kind", "channel"],
        update_fields=["enabled"],
    )
    audit_log_write(
        event=AuditEvent.NOTIFICATION_PREFERENCES_UPDATED,
        actor=actor,
        target=member,
        details={"enabled": sorted(f"{k}:{c}" for k, c in enabled)},
    )


@transaction.atomic
def push_subscription_add(
    *, member: Member, endpoint: str, p256dh: str, auth: str, actor: Actor = None
) -> PushSubscription:
    """Store (or move to this member) a browser's push subscription."""
    if not endpoint.startswith(("https://", "http://")) or len(endpoint) > 1000:
        raise ApplicationError("A push subscription needs its endpoint URL.")
    try:
        if len(vapid.b64url_decode(p256dh)) != 65 or len(vapid.b64url_decode(auth)) != 16:
            raise ValueError("key lengths")
    except ValueError as exc:
        raise ApplicationError("The subscription's keys are not valid Web Push keys.") from exc
    subscription, _ = PushSubscription.objects.update_or_create(
        endpoint=endpoint, defaults={"member": member, "p256dh": p256dh, "auth": auth}
    )
    audit_log_write(
        event=AuditEvent.PUSH_SUBSCRIPTION_ADDED,
        actor=actor,
        target=subscription,
        details={"member": member.membership_number},
    )
    return subscription


@transaction.atomic
def push_subscription_remove(*, member: Member, endpoint: str, actor: Actor = None) -> int:
    deleted, _ = PushSubscription.objects.filter(member=member, endpoint=endpoint).delete()
    if deleted:
        audit_log_write(
            event=AuditEvent.PUSH_SUBSCRIPTION_REMOVED,
            actor=actor,
            target=member,
            details={"subscriptions": deleted},
        )
    return deleted


@transaction.atomic
def notifications_mark_read(
    *, member: Member, notification_ids: list[int] | None = None, actor: Actor = None
) -> int:
    """Mark the member's unread inbox notifications read (those given, or all)."""
    rows = Notification.objects.filter(member=member, read_at__isnull=True)
    if notification_ids is not None:
        rows = rows.filter(pk__in=notification_ids)
    count = rows.update(read_at=timezone.now())
    if count:
        audit_log_write(
            event=AuditEvent.NOTIFICATIONS_READ,
            actor=actor,
            target=member,
            details={"count": count},
        )
    return count


@transaction.atomic
def notifications_member_erase(*, member_id: int) -> int:
    """Erasure: delete the member's push subscriptions and notifications (their text may name
    the member's sites or amounts). Returns the number of rows deleted."""
    subs, _ = PushSubscription.objects.filter(member_id=member_id).delete()
    notes, _ = Notification.objects.filter(member_id=member_id).delete()
    return subs + notes
