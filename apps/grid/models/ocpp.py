"""EV charge points speaking OCPP (1.6-J or 2.0.1) to the central system (`ocpp_server`)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.core.state import StatusModel


class ChargePoint(StatusModel, models.Model):
    """A registered charger. It connects to ws://<host>:OCPP_PORT/ocpp/<ocpp_id> with HTTP Basic
    credentials `<ocpp_id>:<password>` (OCPP security profile 1); only the password's hash is
    stored. Its set points come from the dispatch plan of its flexible device."""

    class Status(models.TextChoices):
        NEW = "new", "Never connected"
        ONLINE = "online", "Online"
        OFFLINE = "offline", "Offline"

    TRANSITIONS = {
        Status.NEW: {Status.ONLINE},
        Status.ONLINE: {Status.OFFLINE},
        Status.OFFLINE: {Status.ONLINE},
    }

    ocpp_id = models.CharField(max_length=48, unique=True)
    password_hash = models.CharField(max_length=128)
    device = models.OneToOneField(
        "grid.FlexibleDevice",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="charge_point",
    )
    protocol = models.CharField(max_length=12, blank=True)  # ocpp1.6 | ocpp2.0.1
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.NEW)
    connector_status = models.CharField(max_length=24, blank=True)
    vendor = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=50, blank=True)
    last_boot_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["ocpp_id"]

    def __str__(self) -> str:
        return self.ocpp_id


class ChargingToken(models.Model):
    """A member's RFID card or app token (OCPP idTag / idToken)."""

    token = models.CharField(max_length=36, unique=True)
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.CASCADE, related_name="charging_tokens"
    )
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.token


class ChargingSession(models.Model):
    """One charging transaction (1.6 Start/StopTransaction, 2.0.1 TransactionEvent)."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.PROTECT, related_name="sessions")
    transaction_id = models.CharField(max_length=36)
    token = models.ForeignKey(
        ChargingToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    member = models.ForeignKey(
        "accounts.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    connector_id = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    meter_start_wh = models.BigIntegerField(default=0)
    meter_stop_wh = models.BigIntegerField(null=True, blank=True)
    stop_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["charge_point", "transaction_id"], name="grid_session_once_per_cp"
            )
        ]

    def __str__(self) -> str:
        return f"{self.charge_point.ocpp_id} #{self.transaction_id}"


class ChargePointMeterValue(models.Model):
    """A sampled value from a charger's own meter (OCPP MeterValues), kept apart from the
    metering point's validated readings: `source` says it came over OCPP."""

    SOURCE_OCPP = "ocpp"

    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, related_name="meter_values"
    )
    session = models.ForeignKey(
        ChargingSession,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="meter_values",
    )
    timestamp = models.DateTimeField()
    energy_wh = models.BigIntegerField(null=True, blank=True)  # Energy.Active.Import.Register
    power_w = models.IntegerField(null=True, blank=True)  # Power.Active.Import
    soc_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    source = models.CharField(max_length=8, default=SOURCE_OCPP, editable=False)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["charge_point", "timestamp"]
        constraints = [
            models.UniqueConstraint(
                fields=["charge_point", "timestamp"], name="grid_cp_meter_value_once"
            )
        ]
