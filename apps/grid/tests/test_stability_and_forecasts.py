"""Power flow at measured and forecast states (alerts, score), and stored day-ahead forecasts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from apps.chain.models import ChainIntent
from apps.grid.forecasting.methods import METHODS
from apps.grid.models import Forecast, ForecastModelChoice, GridAlert, GridLine
from apps.grid.services import (
    forecast_issue,
    forecast_model_choose,
    stability_assess_forecast,
    stability_assess_measured,
)
from apps.grid.stability import score
from apps.grid.tests.factories import ConnectionPointFactory, TransformerFactory
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 19, 18, 0, tzinfo=UTC)


def small_grid(capacity_kva: int = 100, sites: int = 4):
    trafo = TransformerFactory(capacity_kva=capacity_kva, lv_bus_name="LV busbar")
    points = []
    previous = "LV busbar"
    for i in range(sites):
        cp = ConnectionPointFactory(transformer=trafo, bus_name=f"Bus {trafo.pk}-{i}")
        GridLine.objects.create(
            transformer=trafo,
            name=f"Line {trafo.pk}-{i}",
            from_bus=previous,
            to_bus=cp.bus_name,
            length_km=0.08,
            std_type="NAYY 4x150SE 0.6/1kV",
            max_i_ka=0.27,
        )
        previous = cp.bus_name
        points.append((cp, MeterFactory(member=cp.member, connection_point=cp)))
    return trafo, points


def meter_at(points, when, wh_each):
    readings_backfill(
        rows=[
            BackfillRow(meter_id=m.pk, interval_start=when, import_wh=wh_each, export_wh=0)
            for _, m in points
        ]
    )


def test_re_assessing_an_hour_with_late_readings_keeps_its_first_record_on_chain():
    """The hour was first assessed with part of its readings; late readings change the result,
    and the re-assessment must neither fail on the record's idempotency key nor send a second
    record."""
    _trafo, points = small_grid(capacity_kva=100)
    meter_at(points[:2], T0, 2_000)
    first = stability_assess_measured(interval_start=T0)
    meter_at(points[2:], T0, 6_000)  # late readings: more load at the same hour
    second = stability_assess_measured(interval_start=T0)
    assert second.transformers != first.transformers  # a different record than the first
    records = ChainIntent.objects.filter(intent="stability_record")
    assert records.count() == 1
    assert records.get().payload["score_bp"] == round(first.score * 100)


def test_stability_score_is_documented_shape():
    assert score(50, 0.02) == 100
    assert score(100, 0.02) == 50  # halfway between 80 % and 120 %
    assert score(60, 0.075) == 50  # halfway between 5 % and 10 % deviation
    assert score(130, 0.0) == 0 and score(50, 0.0, converged=False) == 0


def test_measured_state_power_flow_raises_overload_alert_and_records_score():
    trafo, points = small_grid(capacity_kva=100)
    meter_at(points, T0, 2_000)  # 8 kW per site: 32 kW on 100 kVA -> healthy
    a = stability_assess_measured(interval_start=T0)
    assert a.converged and a.score > 90
    assert 25 < a.transformers[trafo.name]["loading_percent"] < 45
    assert a.min_vm_pu > 0.95
    # Node voltages of every site bus are kept; the far end of the feeder is the lowest.
    far_end = points[-1][0].bus_name
    assert a.bus_voltages[far_end] == a.min_vm_pu
    assert not GridAlert.objects.exists()
    # Hourly measured scores are recorded through GridBalancer (stability_record).
    intent = ChainIntent.objects.get(intent="stability_record")
    assert intent.payload["score_bp"] == round(a.score * 100)

    later = T0 + timedelta(minutes=15)
    meter_at(points, later, 8_000)  # 32 kW per site: 128 kW on 100 kVA
    b = stability_assess_measured(interval_start=later)
    assert b.transformers[trafo.name]["loading_percent"] > 100
    assert b.score < a.score
    alert = GridAlert.objects.get(kind="overload", subject=trafo.name)
    assert "measured at 2026-03-19 18:15" in alert.message


@pytest.mark.slow
def test_forecast_state_alerts_before_it_happens():
    trafo, points = small_grid(capacity_kva=100)
    day = datetime(2026, 3, 20, tzinfo=UTC)
    values = [5_000] * 96
    values[72] = 40_000  # 160 kW forecast at 18:00
    Forecast.objects.create(
        series_key=f"transformer:{trafo.pk}:load",
        kind="load",
        method="seasonal_mean_4w",
        start=day,
        values_wh=values,
    )
    summary = stability_assess_forecast(day_start=day)
    assert summary["intervals"] == 96 and summary["alerts"] >= 1
    alert = GridAlert.objects.get(kind="overload", source="forecast")
    assert alert.interval_start == day + timedelta(hours=18)
    assert "forecast for 2026-03-20 18:00" in alert.message


@pytest.mark.slow
def test_forecast_issue_chooses_by_backtest_and_stores_a_day_ahead(settings):
    settings.GRID_FORECAST_TRAIN_DAYS = 14
    settings.GRID_FORECAST_TEST_DAYS = 2
    settings.GRID_METER_METHODS = ["seasonal_naive_daily", "seasonal_mean_4w"]
    settings.GRID_METER_TEST_DAYS = 1
    trafo, points = small_grid(sites=2)
    start = datetime(2026, 2, 20, tzinfo=UTC)
    rng = np.random.default_rng(1)
    rows = []
    for i in range(18 * 96):
        t = start + i * timedelta(minutes=15)
        hour = t.hour + t.minute / 60
        base = 100 + 300 * np.exp(-(((hour - 18) / 2) ** 2))
        for _, m in points:
            rows.append(
                BackfillRow(
                    meter_id=m.pk,
                    interval_start=t,
                    import_wh=int(base * (1 + 0.1 * rng.standard_normal())),
                    export_wh=0,
                )
            )
    readings_backfill(rows=rows)
    now = start + timedelta(days=18) - timedelta(minutes=1)
    forecast = forecast_issue(series_key=f"transformer:{trafo.pk}:load", now=now)
    choice = ForecastModelChoice.objects.get(series_key=f"transformer:{trafo.pk}:load")
    assert forecast.method == choice.method and choice.method in METHODS
    assert choice.metrics[choice.method]["nmae"] == min(
        m["nmae"] for m in choice.metrics.values() if m.get("nmae") is not None
    )
    assert forecast.start == datetime(2026, 3, 10, tzinfo=UTC)  # the next UTC day
    assert len(forecast.values_wh) == 96 and forecast.issued_at == now
    evening = np.mean(forecast.values_wh[70:74])
    night = np.mean(forecast.values_wh[8:12])
    assert evening > 3 * night  # the daily shape is forecast (two meters summed)
    # Meter series choose among the cheaper candidate set on fewer origins.
    meter_choice = forecast_model_choose(series_key=f"meter:{points[0][1].serial}:load", now=now)
    assert set(meter_choice.metrics) == set(settings.GRID_METER_METHODS)
    assert meter_choice.test_days == settings.GRID_METER_TEST_DAYS
