"""Demand response, after OpenADR 2.0b: an event (eiEvent) has an id, a modification number,
signals (name, type, intervals), targets, and per-site opt-in/opt-out (oadrCreateOpt)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.state import StatusModel


class DREvent(StatusModel, models.Model):
    class Status(models.TextChoices):
        # OpenADR eventStatus far/near collapse into "published" (notified, not started).
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published (members notified)"
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        SETTLED = "settled", "Performance recorded"
        CANCELLED = "cancelled", "Cancelled"

    TRANSITIONS = {
        Status.DRAFT: {Status.PUBLISHED, Status.CANCELLED},
        Status.PUBLISHED: {Status.PUBLISHED, Status.ACTIVE, Status.CANCELLED},
        Status.ACTIVE: {Status.COMPLETED, Status.CANCELLED},
        Status.COMPLETED: {Status.SETTLED},
        Status.SETTLED: set(),
        Status.CANCELLED: set(),
    }

    class SignalName(models.TextChoices):
        SIMPLE = "SIMPLE", "SIMPLE (levels 0-3)"
        ELECTRICITY_PRICE = "ELECTRICITY_PRICE", "ELECTRICITY_PRICE"
        LOAD_DISPATCH = "LOAD_DISPATCH", "LOAD_DISPATCH"

    class SignalType(models.TextChoices):
        LEVEL = "level", "level"
        PRICE = "price", "price"
        DELTA = "delta", "delta"
        SETPOINT = "setpoint", "setpoint"

    event_id = models.CharField(max_length=64, unique=True)  # OpenADR eventID
    modification_number = models.PositiveIntegerField(default=0)
    modification_reason = models.CharField(max_length=200, blank=True)
    market_context = models.CharField(max_length=200, default="energysphere:dr")
    signal_name = models.CharField(max_length=20, choices=SignalName.choices)
    signal_type = models.CharField(max_length=10, choices=SignalType.choices)
    # Signal intervals (OpenADR strm:intervals): [{"start": iso, "duration_s": int, "value": x}]
    intervals = models.JSONField(default=list)
    start = models.DateTimeField()
    end = models.DateTimeField()
    target_reduction_w = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    chain_intent_ref = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-start", "-id"]
        verbose_name = "DR event"
        verbose_name_plural = "DR events"

    def __str__(self) -> str:
        return f"{self.event_id} (mod {self.modification_number}, {self.status})"


class DRParticipation(models.Model):
    """A targeted site in an event: its opt state and measured performance."""

    class Opt(models.TextChoices):
        PENDING = "pending", "No answer yet"
        OPT_IN = "optIn", "Opted in"
        OPT_OUT = "optOut", "Opted out"

    event = models.ForeignKey(DREvent, on_delete=models.CASCADE, related_name="participations")
    connection_point = models.ForeignKey(
        "grid.ConnectionPoint", on_delete=models.PROTECT, related_name="dr_participations"
    )
    opt = models.CharField(max_length=8, choices=Opt.choices, default=Opt.PENDING)
    notified_at = models.DateTimeField(null=True, blank=True)
    notified_modification = models.PositiveIntegerField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    baseline_wh = models.BigIntegerField(null=True, blank=True)
    actual_wh = models.BigIntegerField(null=True, blank=True)
    delivered_wh = models.BigIntegerField(null=True, blank=True)  # max(0, baseline − actual)
    baseline_days = models.JSONField(default=list, blank=True)  # the similar days used
    reward_tokens = models.BigIntegerField(null=True, blank=True)
    reward_ref = models.CharField(max_length=100, blank=True)
    chain_intent_ref = models.CharField(max_length=200, blank=True)
    measured_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["event_id", "connection_point_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "connection_point"], name="grid_dr_one_participation_per_site"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event.event_id} @ {self.connection_point.code}: {self.opt}"

    @staticmethod
    def _kwh(wh: int | None) -> str:
        return "–" if wh is None else f"{wh / 1000:.2f}"

    @property
    def baseline_kwh(self) -> str:
        return self._kwh(self.baseline_wh)

    @property
    def actual_kwh(self) -> str:
        return self._kwh(self.actual_wh)

    @property
    def delivered_kwh(self) -> str:
        return self._kwh(self.delivered_wh)
