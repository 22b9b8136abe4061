"""Forecasting methods (pure: numpy, pandas, statsmodels; no Django).

Each method is `fit_predict(history, horizon, ctx) -> np.ndarray` where `history` is a regular
float array ending right before the forecast origin. Methods never see data at or after the
origin: the backtest slices the history before calling them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Context:
    steps_per_day: int
    origin_index: pd.DatetimeIndex | None = None  # timestamps of the horizon (for exog)
    history_index: pd.DatetimeIndex | None = None
    exog_fn: Callable[[pd.DatetimeIndex], np.ndarray] | None = None  # e.g. clear-sky GHI

    @property
    def steps_per_week(self) -> int:
        return 7 * self.steps_per_day


class NotEnoughHistory(Exception):
    pass


def _repeat_last(history: np.ndarray, period: int, horizon: int) -> np.ndarray:
    if len(history) < period:
        raise NotEnoughHistory(f"needs {period} steps of history")
    last = history[-period:]
    reps = int(np.ceil(horizon / period))
    return np.tile(last, reps)[:horizon]


def seasonal_naive_daily(history: np.ndarray, horizon: int, ctx: Context) -> np.ndarray:
    """Baseline: the same slot one day earlier."""
    return _repeat_last(history, ctx.steps_per_day, horizon)


def seasonal_naive_weekly(history: np.ndarray, horizon: int, ctx: Context) -> np.ndarray:
    """Baseline: the same slot one week earlier."""
    return _repeat_last(history, ctx.steps_per_week, horizon)


def seasonal_mean(history: np.ndarray, horizon: int, ctx: Context, weeks: int = 4) -> np.ndarray:
    """Average of the same weekly slot over the last `weeks` weeks (robust weekly profile)."""
    w = ctx.steps_per_week
    n = min(weeks, len(history) // w)
    if n < 2:
        raise NotEnoughHistory("needs two full weeks")
    stack = np.stack([history[len(history) - (k + 1) * w : len(history) - k * w] for k in range(n)])
    profile = stack[::-1].mean(axis=0)  # oldest first; aligned with the last week
    reps = int(np.ceil(horizon / w))
    return np.tile(profile, reps)[:horizon]


def holt_winters(history: np.ndarray, horizon: int, ctx: Context) -> np.ndarray:
    """Additive Holt-Winters with daily seasonality, damped trend (statsmodels)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    m = ctx.steps_per_day
    if len(history) < 2 * m + 2:
        raise NotEnoughHistory("needs two full days")
    y = history[-min(len(history), 14 * m) :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(
            y,
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=m,
            initialization_method="heuristic" if len(y) >= 4 * m else "estimated",
        ).fit(optimized=True)
        return np.asarray(model.forecast(horizon), dtype=float)


def mstl_ets(history: np.ndarray, horizon: int, ctx: Context) -> np.ndarray:
    """MSTL decomposition with daily and weekly seasonality; ETS (damped Holt) on the
    seasonally adjusted series; the seasonal components continue their last cycle."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    from statsmodels.tsa.seasonal import MSTL

    d, w = ctx.steps_per_day, ctx.steps_per_week
    y = history[-min(len(history), 4 * w) :]
    periods: tuple[int, ...] = (d, w) if len(y) > 2 * w else (d,)
    if len(y) < 2 * d:
        raise NotEnoughHistory("needs two full days")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = MSTL(y, periods=periods, iterate=1).fit()
        seasonal = np.asarray(res.seasonal).reshape(len(y), -1)
        future_seasonal = np.zeros(horizon)
        # MSTL drops periods that do not fit twice into the data: use what it kept.
        for j, p in enumerate(periods[: seasonal.shape[1]]):
            future_seasonal += _repeat_last(seasonal[:, j], p, horizon)
        adjusted = y - seasonal.sum(axis=1)
        ets = ExponentialSmoothing(
            adjusted, trend="add", damped_trend=True, initialization_method="estimated"
        ).fit()
        return np.asarray(ets.forecast(horizon), dtype=float) + future_seasonal


def holt_winters_weekly(history: np.ndarray, horizon: int, ctx: Context) -> np.ndarray:
    """Additive Holt-Winters with a weekly season (statsmodels), no trend, last 4 weeks.

    A weekly season holds the daily cycle of every weekday, so this models daily and weekly
    seasonality together; level and season adapt with the smoothing weights."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    w = ctx.steps_per_week
    if len(history) < 2 * w + 2:
        raise NotEnoughHistory("needs two full weeks")
    y = history[-min(len(history), 4 * w) :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(
            y, trend=None, seasonal="add", seasonal_periods=w, initialization_method="heuristic"
        ).fit(optimized=True)
        return np.asarray(model.forecast(horizon), dtype=float)


def _weekly_profile(y: np.ndarray, end: int, length: int, w: int, weeks: int, decay: float):
    """Weighted mean of the `length` steps from `end` one, two, … `weeks` weeks earlier (the
    most recent week weighs 1, the one before `decay`, then `decay`², …); weeks that start
    before the data are left out. `length` is at most one week."""
    total = np.zeros(length)
    weight = 0.0
    for k in range(weeks):
        start = end - (k + 1) * w
        if start < 0:
            break
        total += decay**k * y[start : start + length]
        weight += decay**k
    return total / weight


def weekly_profile_ar(
    history: np.ndarray,
    horizon: int,
    ctx: Context,
    weeks: int = 4,
    decay: float = 0.7,
    fit_days: int = 14,
) -> np.ndarray:
    """Weekly profile (time of day × day of week) plus yesterday's deviation carried forward.

    The profile is the decaying-weight mean of the same weekly slot over the last `weeks`
    weeks, so it holds the daily and the weekly cycle together. Its error on the last day is
    split into a level (the day's mean) and a shape (the rest); how much of each persists into
    the next day (`a`, `b` in [0, 1], then `a`², `b`² the day after) is a least-squares fit
    over the last `fit_days` day boundaries of the history. No exogenous data; a few ms."""
    y = np.asarray(history, dtype=float)
    n, d, w = len(y), ctx.steps_per_day, ctx.steps_per_week
    if n < 2 * w:
        raise NotEnoughHistory("needs two full weeks")
    k_weeks = min(weeks, n // w)

    def profile(end: int, length: int) -> np.ndarray:
        return _weekly_profile(y, end, length, w, k_weeks, decay)

    features, targets = [], []
    for j in range(1, fit_days + 1):
        origin = n - j * d
        if origin - d - w < 0:
            break
        before = y[origin - d : origin] - profile(origin - d, d)
        targets.append(y[origin : origin + d] - profile(origin, d))
        features.append(np.column_stack([np.full(d, before.mean()), before - before.mean()]))
    a = b = 0.0
    if len(features) >= 3:
        coef, *_ = np.linalg.lstsq(np.concatenate(features), np.concatenate(targets), rcond=None)
        a, b = (float(np.clip(c, 0.0, 1.0)) for c in coef)
    base = np.resize(profile(n, min(horizon, w)), horizon)
    last = y[n - d :] - profile(n - d, d)
    steps = np.arange(horizon)
    days_ahead = steps // d + 1
    shape = (last - last.mean())[steps % d]
    return base + a**days_ahead * last.mean() + b**days_ahead * shape


def _fourier(index: np.ndarray, period_steps: float, k: int) -> np.ndarray:
    cols = []
    for i in range(1, k + 1):
        cols.append(np.sin(2 * np.pi * i * index / period_steps))
        cols.append(np.cos(2 * np.pi * i * index / period_steps))
    return np.column_stack(cols)


def sarimax(history: np.ndarray, horizon: int, ctx: Context) -> np.ndarray:
    """Regression with ARIMA(2,0,0) errors (statsmodels SARIMAX). Exogenous regressors: daily
    and weekly Fourier terms, plus clear-sky irradiance (pvlib) when the series is PV.
    Seasonality enters through the regressors, which keeps the fit fast on 15-minute data."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    d, w = ctx.steps_per_day, ctx.steps_per_week
    n_train = min(len(history), 3 * w)
    if n_train < 3 * d:
        raise NotEnoughHistory("needs three full days")
    y = history[-n_train:]
    t = np.arange(len(history) - n_train, len(history) + horizon, dtype=float)
    blocks = [_fourier(t, d, 4)]
    if n_train >= 2 * w:
        blocks.append(_fourier(t, w, 2))
    if ctx.exog_fn is not None and ctx.history_index is not None and ctx.origin_index is not None:
        idx = ctx.history_index[-n_train:].append(ctx.origin_index)
        ghi = np.asarray(ctx.exog_fn(idx), dtype=float).reshape(-1, 1)
        scale = ghi.max() or 1.0
        blocks.append(ghi / scale)
    exog = np.column_stack(blocks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SARIMAX(
            y,
            exog=exog[:n_train],
            order=(2, 0, 0),
            trend="c",
            enforce_stationarity=False,
        )
        fitted = model.fit(disp=False, maxiter=50, method="lbfgs")
        return np.asarray(fitted.forecast(horizon, exog=exog[n_train:]), dtype=float)


METHODS: dict[str, Callable[[np.ndarray, int, Context], np.ndarray]] = {
    "seasonal_naive_daily": seasonal_naive_daily,
    "seasonal_naive_weekly": seasonal_naive_weekly,
    "seasonal_mean_4w": seasonal_mean,
    "holt_winters_daily": holt_winters,
    "mstl_ets": mstl_ets,
    "sarimax_fourier": sarimax,
    "holt_winters_weekly": holt_winters_weekly,
    "weekly_profile_ar": weekly_profile_ar,
}
BASELINES = ("seasonal_naive_daily", "seasonal_naive_weekly")
