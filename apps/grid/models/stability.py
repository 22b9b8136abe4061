"""Power-flow assessments (measured and forecast states) and the alerts they raise."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class StateSource(models.TextChoices):
    MEASURED = "measured", "Measured"
    FORECAST = "forecast", "Forecast"


class StabilityAssessment(models.Model):
    interval_start = models.DateTimeField()
    source = models.CharField(max_length=10, choices=StateSource.choices)
    score = models.FloatField()  # 0..100, see docs/grid.md "Stability score"
    max_loading_percent = models.FloatField()
    min_vm_pu = models.FloatField()
    max_vm_pu = models.FloatField()
    converged = models.BooleanField(default=True)
    transformers = models.JSONField(default=dict)  # {name: {"loading_percent":…, "p_kw":…}}
    violations = models.JSONField(default=list)
    bus_voltages = models.JSONField(default=dict)  # {bus name: vm_pu}
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-interval_start", "source"]
        constraints = [
            models.UniqueConstraint(
                fields=["interval_start", "source"], name="grid_one_assessment_per_interval"
            )
        ]

    def __str__(self) -> str:
        return f"{self.interval_start:%Y-%m-%d %H:%M} {self.source}: {self.score:.0f}"


class GridAlert(models.Model):
    class Kind(models.TextChoices):
        OVERLOAD = "overload", "Transformer overload"
        LINE_OVERLOAD = "line_overload", "Line overload"
        UNDERVOLTAGE = "undervoltage", "Voltage below limit"
        OVERVOLTAGE = "overvoltage", "Voltage above limit"
        NOT_CONVERGED = "not_converged", "Power flow did not converge"

    kind = models.CharField(max_length=14, choices=Kind.choices)
    source = models.CharField(max_length=10, choices=StateSource.choices)
    interval_start = models.DateTimeField()
    subject = models.CharField(max_length=100)  # transformer, line or bus name
    value = models.FloatField()
    limit = models.FloatField()
    message = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-interval_start", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "source", "interval_start", "subject"], name="grid_alert_once"
            )
        ]

    def __str__(self) -> str:
        return self.message
