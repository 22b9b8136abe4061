from __future__ import annotations

from django.db import models


class Meter(models.Model):
    """A smart meter with its secp256k1 device key (the same curve as Ethereum)."""

    class Direction(models.TextChoices):
        IMPORT = "import", "Import (consumption only)"
        EXPORT = "export", "Export (generation only)"
        BIDIRECTIONAL = "bidirectional", "Bidirectional"

    class AssetKind(models.TextChoices):
        HOUSEHOLD = "household", "Household load"
        PV = "pv", "Rooftop PV"
        BATTERY = "battery", "Battery"
        EV = "ev", "EV charger"
        HEAT_PUMP = "heat_pump", "Heat pump"
        SHARED_PV = "shared_pv", "Shared PV plant"

    serial = models.CharField(max_length=40, unique=True)
    member = models.ForeignKey(
        "accounts.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="meters"
    )
    connection_point = models.ForeignKey(
        "grid.ConnectionPoint",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="meters",
    )
    asset_kind = models.CharField(
        max_length=12, choices=AssetKind.choices, default=AssetKind.HOUSEHOLD
    )
    direction = models.CharField(
        max_length=14, choices=Direction.choices, default=Direction.BIDIRECTIONAL
    )
    interval_seconds = models.PositiveIntegerField(default=900)
    multiplier = models.PositiveIntegerField(default=1)
    capacity_w = models.PositiveIntegerField(help_text="Contracted/physical capacity in W.")
    public_key = models.CharField(
        max_length=130, blank=True, help_text="Uncompressed secp256k1 public key, hex."
    )
    address = models.CharField(
        max_length=42, blank=True, db_index=True, help_text="Ethereum address of the device key."
    )
    active_from = models.DateTimeField()
    active_to = models.DateTimeField(null=True, blank=True)
    firmware_version = models.CharField(max_length=40, blank=True)
    firmware_target = models.CharField(max_length=40, blank=True)
    config_version = models.PositiveIntegerField(default=1)
    last_seen = models.DateTimeField(null=True, blank=True)
    last_seq = models.BigIntegerField(default=-1)

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return self.serial
