"""Idle cost: a series' model is chosen by backtest once per GRID_MODEL_CHOICE_MAX_AGE_DAYS, and
a backtest that is not possible is not re-run on the same data (issue 22)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.grid.models import Forecast
from apps.grid.services import forecast_issue
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db
START = datetime(2026, 2, 20, tzinfo=UTC)


def _meter_with_days(days: float):
    meter = MeterFactory(serial=f"CACHE-{uuid.uuid4().hex[:10]}")
    readings_backfill(
        rows=[
            BackfillRow(
                meter_id=meter.pk,
                interval_start=START + i * timedelta(minutes=15),
                import_wh=100 + (i % 96),
                export_wh=0,
            )
            for i in range(int(days * 96))
        ]
    )
    return meter


def _choices(series_key: str) -> int:
    return AuditLog.objects.filter(
        event=AuditEvent.FORECAST_MODEL_CHOSEN, details__series_key=series_key
    ).count()


def test_a_recent_model_choice_is_reused_without_a_new_backtest(settings):
    settings.GRID_METER_METHODS = ["seasonal_naive_daily", "seasonal_mean_4w"]
    settings.GRID_METER_TEST_DAYS = 1
    settings.GRID_MODEL_CHOICE_MAX_AGE_DAYS = 7
    meter = _meter_with_days(10)
    key = f"meter:{meter.serial}:load"
    now = START + timedelta(days=10) - timedelta(minutes=1)

    for hours in (0, 1, 30):  # the same data, then a day more: the choice is young enough
        forecast_issue(series_key=key, now=now + timedelta(hours=hours))
    assert _choices(key) == 1
    assert Forecast.objects.filter(series_key=key).count() == 3

    forecast_issue(series_key=key, now=now + timedelta(days=8))  # older than the maximum age
    assert _choices(key) == 2


def test_an_impossible_backtest_is_not_retried_on_the_same_data(settings, caplog):
    settings.GRID_METER_METHODS = ["seasonal_naive_daily"]
    settings.GRID_METER_TEST_DAYS = 1
    meter = _meter_with_days(1.5)  # too little history for any backtest origin
    key = f"meter:{meter.serial}:load"
    now = START + timedelta(days=1, hours=12)

    with caplog.at_level(logging.INFO, logger="apps.grid.services.forecasts"):
        first = forecast_issue(series_key=key, now=now)
        again = forecast_issue(series_key=key, now=now + timedelta(minutes=30))
    tried = [r for r in caplog.records if "no backtest possible" in r.getMessage()]
    assert len(tried) == 1, "the failed backtest was repeated on unchanged data"
    # Both forecasts are still issued, with the fallback method, and no choice is stored.
    assert first.method == again.method == "seasonal_naive_daily"
    assert first.model_choice is None and _choices(key) == 0

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="apps.grid.services.forecasts"):
        forecast_issue(series_key=key, now=now + timedelta(days=1))  # a new day of data
    assert [r for r in caplog.records if "no backtest possible" in r.getMessage()]
