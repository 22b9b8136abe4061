"""Flexible devices, dispatch plans and the MQTT commands that carry their set points."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from apps.core.state import StatusModel


class FlexibleDevice(models.Model):
    class Kind(models.TextChoices):
        BATTERY = "battery", "Battery"
        EV = "ev", "EV charger"

    serial = models.CharField(max_length=40, unique=True)  # MQTT: <prefix>/devices/<serial>/…
    kind = models.CharField(max_length=8, choices=Kind.choices)
    connection_point = models.ForeignKey(
        "grid.ConnectionPoint", on_delete=models.PROTECT, related_name="flexible_devices"
    )
    meter = models.ForeignKey(
        "meters.Meter", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    max_charge_w = models.PositiveIntegerField()
    max_discharge_w = models.PositiveIntegerField(default=0)
    capacity_wh = models.PositiveIntegerField(default=0)  # battery
    soc_wh = models.PositiveIntegerField(default=0)  # last reported state of charge
    min_soc_wh = models.PositiveIntegerField(default=0)
    efficiency = models.FloatField(default=0.95)  # one-way
    daily_energy_wh = models.PositiveIntegerField(default=0)  # EV: energy needed per day
    available_from_hour = models.PositiveSmallIntegerField(default=0)  # EV plug-in (UTC hour)
    deadline_hour = models.PositiveSmallIntegerField(default=24)  # EV needed by (UTC hour)
    active = models.BooleanField(default=True)
    # Set when the device let its last commands expire unanswered: excluded from dispatch until
    # it is heard from again (an acknowledgement or telemetry).
    unresponsive_since = models.DateTimeField(null=True, blank=True)
    missed_commands = models.PositiveIntegerField(default=0)  # in a row, since last heard from
    # EV charger state reported by the device (signed MQTT status); None: never reported.
    ev_plugged = models.BooleanField(null=True, blank=True)
    ev_charging = models.BooleanField(null=True, blank=True)
    state_reported_at = models.DateTimeField(null=True, blank=True)  # last reported SoC/EV state
    # Highest sequence number signed for the device (set-point commands and DR cancellations
    # share it: a device refuses anything not above the last one it accepted).
    last_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return f"{self.serial} ({self.kind})"


class DispatchPlan(StatusModel, models.Model):
    class Status(models.TextChoices):
        OPTIMAL = "optimal", "Optimal"
        FALLBACK = "fallback", "Fallback (infeasible)"
        SUPERSEDED = "superseded", "Superseded"

    TRANSITIONS = {
        Status.OPTIMAL: {Status.SUPERSEDED},
        Status.FALLBACK: {Status.SUPERSEDED},
        Status.SUPERSEDED: set(),
    }

    created_at = models.DateTimeField(default=timezone.now)
    start = models.DateTimeField()
    step_seconds = models.PositiveIntegerField(default=900)
    intervals = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices)
    solver_status = models.CharField(max_length=40)
    cost = models.DecimalField(max_digits=14, decimal_places=4)
    unmanaged_cost = models.DecimalField(max_digits=14, decimal_places=4)
    solve_seconds = models.FloatField(default=0)
    binding = models.JSONField(default=list)
    message = models.TextField(blank=True)
    # Fingerprint of the forecasts and prices the plan was computed from (re-plan on change).
    inputs_fingerprint = models.CharField(max_length=64, db_index=True)
    transformer_flows_w = models.JSONField(default=dict)
    unmanaged_flows_w = models.JSONField(default=dict)
    prices = models.JSONField(default=list)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"plan {self.pk} from {self.start:%Y-%m-%d %H:%M} ({self.status})"


class DeviceCommand(StatusModel, models.Model):
    """The set points of one device for one plan, published on <prefix>/devices/<serial>/commands
    and acknowledged by the device on <prefix>/devices/<serial>/acks."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        REJECTED = "rejected", "Rejected by the device"
        EXPIRED = "expired", "No acknowledgement in time"
        SUPERSEDED = "superseded", "Superseded by a newer plan"

    TRANSITIONS = {
        Status.PENDING: {Status.SENT, Status.SUPERSEDED, Status.EXPIRED},
        Status.SENT: {Status.ACKNOWLEDGED, Status.REJECTED, Status.EXPIRED, Status.SUPERSEDED},
        Status.ACKNOWLEDGED: {Status.SUPERSEDED},
        Status.REJECTED: {Status.SUPERSEDED},
        Status.EXPIRED: {Status.SUPERSEDED},
        Status.SUPERSEDED: set(),
    }

    command_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    plan = models.ForeignKey(DispatchPlan, on_delete=models.CASCADE, related_name="commands")
    device = models.ForeignKey(FlexibleDevice, on_delete=models.PROTECT, related_name="commands")
    setpoints_w = models.JSONField(default=list)  # + charge/consume, − discharge; per interval
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    # Replay protection: per-device increasing sequence number and expiry, signed with the command.
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    ack_detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "device_id"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "device"], name="grid_command_once_per_plan")
        ]

    def __str__(self) -> str:
        return f"{self.device.serial} plan {self.plan_id} ({self.status})"
