"""Forecasting engines and the forecast_backtest command, on generated and on bad CSVs."""

from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.grid.forecasting import methods as fm
from apps.grid.forecasting.backtest import rolling_origin_backtest
from apps.grid.forecasting.series import SeriesError, clean_series, load_series


def synthetic(
    days: int = 35, step_minutes: int = 60, seed: int = 3, start="2026-03-02"
) -> pd.Series:
    """Load-like series: daily double peak, quieter weekends, noise."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(
        start, periods=days * 24 * 60 // step_minutes, freq=f"{step_minutes}min", tz="UTC"
    )
    hours = index.hour + index.minute / 60
    daily = (
        1.0 + 0.6 * np.exp(-(((hours - 8) / 1.5) ** 2)) + 1.0 * np.exp(-(((hours - 19) / 2) ** 2))
    )
    weekend = np.where(index.dayofweek >= 5, 0.75, 1.0)
    values = 1000 * daily * weekend * (1 + 0.08 * rng.standard_normal(len(index)))
    return pd.Series(values, index=index)


def write_csv(path, series: pd.Series) -> str:
    series.to_csv(path, header=["value"], index_label="timestamp")
    return str(path)


def run_command(*args) -> dict:
    out = StringIO()
    call_command("forecast_backtest", *args, stdout=out)
    return json.loads(out.getvalue())


def test_backtest_on_generated_series_chooses_a_model_that_beats_weekly_naive():
    clean = clean_series(synthetic(days=26))
    result = rolling_origin_backtest(clean, train_days=15, test_days=4)
    chosen = result.methods[result.chosen]
    assert result.horizon == 24  # one day of hourly steps by default
    assert chosen.nmae <= result.methods["seasonal_naive_weekly"].nmae
    # A smooth profile estimate beats a single noisy day on noisy data.
    assert chosen.nmae < result.methods["seasonal_naive_daily"].nmae
    for name, res in result.methods.items():
        assert res.origins == 4, name
        assert 0 < res.nmae < 1 and res.mase > 0 and res.mape > 0


def double_seasonal(days: int = 56, seed: int = 1, noise: float = 0.004) -> pd.Series:
    """Half-hourly demand with a daily and a weekly cycle (weekends lower and shaped
    differently), a slow annual swing, day-to-day weather-like level drift and noise."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2026-01-05", periods=days * 48, freq="30min", tz="UTC")
    hours = index.hour + index.minute / 60
    weekend = index.dayofweek >= 5
    daily = (
        0.75
        + 0.25 * np.exp(-(((hours - 12) / 4) ** 2))
        + 0.2 * np.exp(-(((hours - 18.5) / 1.7) ** 2))
        - 0.15 * np.exp(-(((hours - 3.5) / 2.5) ** 2))
    )
    weekly = np.select([index.dayofweek == 5, index.dayofweek == 6], [0.88, 0.8], 1.0)
    morning = np.where(weekend, -0.08 * np.exp(-(((hours - 8) / 2) ** 2)), 0.0)
    annual = 1 + 0.1 * np.cos(2 * np.pi * np.arange(len(index)) / (48 * 365))
    drift = np.repeat(np.cumsum(rng.standard_normal(days)) * 0.01, 48)
    wiggle = np.zeros(len(index))
    shocks = rng.standard_normal(len(index)) * noise
    for i in range(1, len(index)):
        wiggle[i] = 0.8 * wiggle[i - 1] + shocks[i]
    return pd.Series(30_000 * (daily * weekly + morning) * annual * (1 + drift + wiggle), index)


@pytest.mark.parametrize(("seed", "noise"), [(2, 0.002), (3, 0.004), (5, 0.01)])
def test_double_seasonal_series_chooses_a_method_beating_weekly_naive_by_15_percent(seed, noise):
    clean = clean_series(double_seasonal(seed=seed, noise=noise))
    cheap = [*fm.BASELINES, "seasonal_mean_4w", "holt_winters_weekly", "weekly_profile_ar"]
    result = rolling_origin_backtest(clean, train_days=28, test_days=14, methods=cheap)
    assert result.horizon == 48 and result.test_days == 14
    chosen = result.methods[result.chosen]
    assert result.chosen in ("holt_winters_weekly", "weekly_profile_ar")
    assert chosen.mape <= 0.85 * result.methods["seasonal_naive_weekly"].mape


def test_weekly_methods_need_two_weeks_and_are_reported_as_skipped():
    clean = clean_series(synthetic(days=16))
    result = rolling_origin_backtest(clean, train_days=10, test_days=3)
    for name in ("holt_winters_weekly", "weekly_profile_ar"):
        assert "two full weeks" in result.methods[name].skipped
        assert result.methods[name].nmae is None
    assert result.chosen not in ("holt_winters_weekly", "weekly_profile_ar")


def test_each_forecast_is_fitted_only_on_data_before_its_origin(monkeypatch):
    seen = []

    def spy(history, horizon, ctx):
        seen.append((ctx.history_index[-1], ctx.origin_index[0], len(history)))
        return np.zeros(horizon)

    monkeypatch.setitem(fm.METHODS, "spy", spy)
    clean = clean_series(synthetic(days=12))
    rolling_origin_backtest(clean, train_days=5, test_days=4, methods=["spy"])
    assert len(seen) == 4
    for last_seen, origin, n in seen:
        assert last_seen < origin
        assert origin.hour == 0 and origin.minute == 0  # daily origins
        assert n == 5 * 24  # training window limited to --train-days
    origins = [o for _, o, _ in seen]
    assert all((b - a) == pd.Timedelta(days=1) for a, b in zip(origins, origins[1:], strict=False))


def test_command_prints_json_per_method_on_any_csv(tmp_path):
    path = write_csv(tmp_path / "load.csv", synthetic(days=24, step_minutes=30))
    out = run_command("--csv", path, "--train-days", "14", "--test-days", "3")
    assert out["step_seconds"] == 1800 and out["horizon"] == 48
    assert set(out["methods"]) == set(fm.METHODS)
    for metrics in out["methods"].values():
        assert {"mape", "nmae", "mase", "fit_seconds"} <= set(metrics)
    assert out["chosen"] in fm.METHODS
    assert out["methods"][out["chosen"]]["nmae"] == min(
        m["nmae"] for m in out["methods"].values() if m["nmae"] is not None
    )


def test_gaps_are_filled_explicitly_and_never_scored(tmp_path):
    series = synthetic(days=20)
    holed = series.drop(series.index[100:103]).drop(series.index[300:330])
    path = write_csv(tmp_path / "gaps.csv", holed)
    out = run_command(
        "--csv",
        path,
        "--train-days",
        "10",
        "--test-days",
        "2",
        "--methods",
        "seasonal_naive_daily,seasonal_mean_4w",
    )
    assert out["input"]["gap_count"] == 2
    assert out["input"]["filled_steps"] == 33
    assert any("filled 33 missing step(s)" in n for n in out["notes"])
    clean = load_series(path)
    assert not clean.values.isna().any()
    assert clean.filled_mask.sum() == 33


def test_unsorted_and_exact_duplicates_are_repaired_and_reported(tmp_path):
    series = synthetic(days=10)
    shuffled = pd.concat([series.iloc[50:], series.iloc[:50], series.iloc[10:12]])
    path = write_csv(tmp_path / "messy.csv", shuffled)
    out = run_command(
        "--csv", path, "--train-days", "5", "--test-days", "2", "--methods", "seasonal_naive_daily"
    )
    assert any("sorted" in n for n in out["notes"])
    assert not any("no UTC offset" in n for n in out["notes"])
    assert any("dropped 2 exact duplicate" in n for n in out["notes"])
    assert out["input"]["rows"] == len(series)


def test_conflicting_duplicates_are_refused_with_the_lines(tmp_path):
    path = tmp_path / "conflict.csv"
    path.write_text(
        "timestamp,value\n2026-01-01T00:00Z,1\n2026-01-01T01:00Z,2\n"
        "2026-01-01T01:00Z,5\n2026-01-01T02:00Z,3\n"
    )
    with pytest.raises(CommandError, match=r"different values.*lines \[3, 4\]"):
        run_command("--csv", str(path))


def test_non_numeric_rows_are_refused_with_line_numbers(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "timestamp,value\n2026-01-01T00:00Z,1\n2026-01-01T01:00Z,n/a\n"
        "yesterday,4\n2026-01-01T03:00Z,3\n"
    )
    with pytest.raises(CommandError) as exc:
        run_command("--csv", str(path))
    assert "line 3 ('n/a')" in str(exc.value)
    assert "line 4 ('yesterday')" in str(exc.value)


def test_too_little_history_for_the_horizon_is_explained(tmp_path):
    path = write_csv(tmp_path / "short.csv", synthetic(days=2))
    with pytest.raises(CommandError, match="Too little history: 2.0 day"):
        run_command("--csv", path)
    with pytest.raises(CommandError, match="File not found"):
        run_command("--csv", str(tmp_path / "missing.csv"))


def test_mape_guards_zeros_on_pv_and_clear_sky_regressor_is_used(tmp_path):
    from apps.grid.forecasting.solar import clear_sky_ghi

    index = pd.date_range("2026-06-01", periods=16 * 96, freq="15min", tz="UTC")
    ghi = clear_sky_ghi(index, latitude=52.5, longitude=13.4)
    rng = np.random.default_rng(0)
    cloud = np.repeat(rng.uniform(0.5, 1.0, 16), 96)
    pv = pd.Series(ghi * cloud * 2.0, index=index)
    assert (pv == 0).sum() > 16 * 20  # nights
    path = write_csv(tmp_path / "pv.csv", pv)
    out = run_command(
        "--csv",
        path,
        "--train-days",
        "14",
        "--test-days",
        "2",
        "--methods",
        "seasonal_naive_daily,sarimax_fourier",
        "--pv-site",
        "52.5,13.4",
    )
    for metrics in out["methods"].values():
        assert metrics["mape"] is not None and np.isfinite(metrics["mape"])
        assert metrics["mape_excluded_points"] > 0


def test_series_checks_reject_an_irregular_grid():
    index = pd.to_datetime(
        [
            "2026-01-01T00:00Z",
            "2026-01-01T01:00Z",
            "2026-01-01T02:00Z",
            "2026-01-01T02:20Z",
            "2026-01-01T03:00Z",
        ]
    )
    with pytest.raises(SeriesError, match="not on the 3600-second grid"):
        clean_series(pd.Series([1.0, 2, 3, 4, 5], index=index))


def test_dr_baseline_uses_same_wall_clock_hours_across_dst_and_skips_event_days():
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from apps.grid.baseline import BaselineError, similar_day_baseline

    tz = ZoneInfo("Europe/Berlin")
    utc = ZoneInfo("UTC")
    energy = {}
    # Three weeks around the spring DST change (2026-03-29): 500 Wh at 18:00-19:00 local time
    # on weekdays, 100 Wh otherwise (keyed by UTC interval start, as metered).
    day = date(2026, 3, 16)
    while day <= date(2026, 4, 3):
        local = datetime.combine(day, datetime.min.time(), tzinfo=tz)
        t = local.astimezone(utc)
        end = (local + timedelta(days=1)).astimezone(utc)  # 92/96/100 intervals
        while t < end:
            wall = t.astimezone(tz)
            energy[t] = 500 if wall.hour == 18 and wall.weekday() < 5 else 100
            t += timedelta(minutes=15)
        day += timedelta(days=1)
    start = datetime(2026, 4, 2, 18, 0, tzinfo=tz).astimezone(utc)  # Thursday, CEST
    excluded = {date(2026, 4, 1)}
    base = similar_day_baseline(
        energy, start=start, end=start + timedelta(hours=1), tz=tz, exclude=excluded
    )
    # Days before the DST change (CET) still contribute their 18:00 local hour, not 17:00.
    assert base.per_interval_wh == [500.0] * 4
    assert len(base.days) == 10 and date(2026, 4, 1) not in base.days
    assert all(d.weekday() < 5 for d in base.days)
    assert min(base.days) < date(2026, 3, 29)
    with pytest.raises(BaselineError, match="only 0 similar day"):
        similar_day_baseline({}, start=start, end=start + timedelta(hours=1), tz=tz)


def test_naive_timestamps_are_read_as_utc_and_said_so(tmp_path):
    series = synthetic(days=6)
    path = tmp_path / "naive.csv"
    lines = ["timestamp,value"] + [
        f"{t.strftime('%Y-%m-%d %H:%M:%S')},{v}" for t, v in series.items()
    ]
    path.write_text("\n".join(lines))
    out = run_command(
        "--csv",
        str(path),
        "--train-days",
        "3",
        "--test-days",
        "2",
        "--methods",
        "seasonal_naive_daily",
    )
    assert out["input"]["start"] == series.index[0].isoformat()
    assert any(f"{len(series)} timestamp(s) had no UTC offset" in n for n in out["notes"])


@settings(max_examples=30, deadline=None)
@given(holes=st.lists(st.tuples(st.integers(1, 400), st.integers(1, 40)), min_size=0, max_size=6))
def test_property_gaps_are_filled_counted_and_measured_values_kept(holes):
    series = synthetic(days=20)
    keep = np.ones(len(series), bool)
    for start, length in holes:
        keep[start : start + length] = False
    keep[0] = keep[-1] = True
    holed = series[keep]
    clean = clean_series(holed)
    assert len(clean.values) == len(series)
    assert not clean.values.isna().any()
    assert int(clean.filled_mask.sum()) == int((~keep).sum())
    assert clean.report["filled_steps"] == int((~keep).sum())
    measured = clean.values[~clean.filled_mask]
    assert np.allclose(measured.to_numpy(), holed.to_numpy())
