"""Notifications to members: preferences per kind × channel, the portal inbox, web push
subscriptions and one delivery row per channel (with its status)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.accounts.models import Member
from apps.core.state import StatusModel


class Kind(models.TextChoices):
    DR_EVENT = "dr_event", "Demand-response events"
    STATEMENT = "statement", "Statements and invoices"
    PAYMENT_PROBLEM = "payment_problem", "Payment problems"
    METER_OFFLINE = "meter_offline", "Meter offline"
    CERTIFICATE_ISSUED = "certificate_issued", "Certificate issued"


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBPUSH = "webpush", "Web push"
    INBOX = "inbox", "Portal inbox"


#: What a member gets before they change anything: everything in the inbox, e-mail and push for
#: what needs attention, only the inbox for the hourly certificates.
DEFAULTS: dict[str, frozenset[str]] = {
    Kind.DR_EVENT: frozenset({Channel.EMAIL, Channel.WEBPUSH, Channel.INBOX}),
    Kind.STATEMENT: frozenset({Channel.EMAIL, Channel.INBOX}),
    Kind.PAYMENT_PROBLEM: frozenset({Channel.EMAIL, Channel.WEBPUSH, Channel.INBOX}),
    Kind.METER_OFFLINE: frozenset({Channel.EMAIL, Channel.WEBPUSH, Channel.INBOX}),
    Kind.CERTIFICATE_ISSUED: frozenset({Channel.INBOX}),
}


class Preference(models.Model):
    """A member's choice for one kind on one channel (absent: `DEFAULTS`)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "kind", "channel"], name="notification_pref_unique"
            )
        ]


class PushSubscription(models.Model):
    """A browser's Web Push subscription (endpoint and its encryption keys)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)


class Notification(models.Model):
    """One notification to one member; listed in their inbox when `in_inbox`."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True)
    in_inbox = models.BooleanField(default=True)
    # The same source event notifies a member once (e.g. "meter_offline:<meter>:<since>").
    dedup_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "dedup_key"],
                condition=~models.Q(dedup_key=""),
                name="notification_dedup_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"


class Delivery(StatusModel, models.Model):
    """One send of a notification on one channel (e-mail, or one push subscription)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    TRANSITIONS = {
        Status.PENDING: frozenset({Status.SENT, Status.FAILED}),
        Status.SENT: frozenset(),
        Status.FAILED: frozenset(),
    }

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    subscription = models.ForeignKey(
        PushSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
