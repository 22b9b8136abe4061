"""OpenADR 2.0b: the VENs our VTN (`manage.py openadr_vtn`) knows, what it queued for them and
the telemetry they report."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OpenADRVen(models.Model):
    """A pre-provisioned VEN: it registers under `ven_name` and answers DR events for the site
    `connection_point`. `fingerprint` (of its TLS client certificate) is checked when the VTN
    runs over HTTPS."""

    ven_name = models.CharField(max_length=64, unique=True)
    ven_id = models.CharField(max_length=64, unique=True)
    registration_id = models.CharField(max_length=64, blank=True)
    connection_point = models.ForeignKey(
        "grid.ConnectionPoint",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="openadr_vens",
    )
    fingerprint = models.CharField(max_length=64, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["ven_name"]
        verbose_name = "OpenADR VEN"
        verbose_name_plural = "OpenADR VENs"

    def __str__(self) -> str:
        return self.ven_name


class OpenADREventDelivery(models.Model):
    """An event (at one modification number) queued by the VTN for a VEN."""

    ven = models.ForeignKey(OpenADRVen, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("grid.DREvent", on_delete=models.CASCADE, related_name="+")
    modification_number = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["ven", "event", "modification_number"], name="grid_openadr_queued_once"
            )
        ]


class OpenADRReport(models.Model):
    """One reported value (oadrUpdateReport), e.g. real power (W) or state of charge (%)."""

    ven = models.ForeignKey(OpenADRVen, on_delete=models.CASCADE, related_name="reports")
    resource_id = models.CharField(max_length=64)
    measurement = models.CharField(max_length=40)
    timestamp = models.DateTimeField()
    value = models.FloatField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ven", "timestamp"]
        constraints = [
            models.UniqueConstraint(
                fields=["ven", "resource_id", "measurement", "timestamp"],
                name="grid_openadr_report_once",
            )
        ]
