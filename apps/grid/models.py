"""Grid topology: substation → feeder → transformer → connection point (member site)."""

from __future__ import annotations

from django.db import models


class Substation(models.Model):
    name = models.CharField(max_length=100, unique=True)
    voltage_kv = models.DecimalField(max_digits=7, decimal_places=2, default=20)
    capacity_kva = models.PositiveIntegerField()
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class Feeder(models.Model):
    substation = models.ForeignKey(Substation, on_delete=models.PROTECT, related_name="feeders")
    name = models.CharField(max_length=100, unique=True)
    capacity_kw = models.PositiveIntegerField()

    def __str__(self) -> str:
        return self.name


class Transformer(models.Model):
    feeder = models.ForeignKey(Feeder, on_delete=models.PROTECT, related_name="transformers")
    name = models.CharField(max_length=100, unique=True)
    capacity_kva = models.PositiveIntegerField()
    # Impedance data where known (from the simbench model), per unit / percent.
    vk_percent = models.FloatField(null=True, blank=True)
    vkr_percent = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class ConnectionPoint(models.Model):
    """A member's site on the grid (one per member), identified by its grid bus."""

    member = models.OneToOneField(
        "accounts.Member", on_delete=models.PROTECT, related_name="connection_point"
    )
    transformer = models.ForeignKey(
        Transformer, on_delete=models.PROTECT, related_name="connection_points"
    )
    code = models.CharField(max_length=40, unique=True)  # e.g. metering point id
    bus_name = models.CharField(max_length=100, blank=True)  # bus in the power-flow model
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    contracted_power_w = models.PositiveIntegerField(default=30_000)

    def __str__(self) -> str:
        return self.code
