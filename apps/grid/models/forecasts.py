"""Forecasts and the per-series model choice (from a rolling-origin backtest)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SeriesKind(models.TextChoices):
    LOAD = "load", "Load (import)"
    PV = "pv", "PV (export)"
    NET = "net", "Net load"


class ForecastModelChoice(models.Model):
    """Which method forecasts a series, chosen by backtest, with every method's metrics.

    series_key: "meter:<serial>:<kind>", "transformer:<id>:<kind>", "feeder:<id>:<kind>",
    "community:<kind>".
    """

    series_key = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=8, choices=SeriesKind.choices)
    method = models.CharField(max_length=40)
    metrics = models.JSONField(default=dict)  # {method: {mape, nmae, mase, fit_seconds}}
    step_seconds = models.PositiveIntegerField(default=900)
    train_days = models.PositiveIntegerField()
    test_days = models.PositiveIntegerField()
    chosen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["series_key"]

    def __str__(self) -> str:
        return f"{self.series_key}: {self.method}"


class Forecast(models.Model):
    """One issued day-ahead forecast: integer Wh per interval from `start`."""

    series_key = models.CharField(max_length=120, db_index=True)
    kind = models.CharField(max_length=8, choices=SeriesKind.choices)
    method = models.CharField(max_length=40)
    issued_at = models.DateTimeField(default=timezone.now)
    start = models.DateTimeField()
    step_seconds = models.PositiveIntegerField(default=900)
    values_wh = models.JSONField(default=list)
    model_choice = models.ForeignKey(
        ForecastModelChoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-issued_at", "-id"]
        indexes = [models.Index(fields=["series_key", "start", "-issued_at"])]

    def __str__(self) -> str:
        return f"{self.series_key} from {self.start:%Y-%m-%d %H:%M} ({self.method})"
