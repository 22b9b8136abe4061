"""Rolling-origin backtest with daily origins (pure: no Django).

For each of the last `test_days` days an origin is placed at that day's first step (UTC
midnight of the series' grid). Every method is fitted only on the history *before* the origin
(at most `train_days` days of it) and forecasts `horizon` steps. Errors are pooled over all
origins. Filled-in values (gaps) are never scored as actuals.

Metrics
- MAPE: mean |e| / |y| over actuals with |y| > 1 % of the mean |y| (zeros and near-zeros, e.g.
  PV at night, are excluded and counted; `null` when nothing is left).
- nMAE: sum |e| / sum |y| (the headline metric; choice is by lowest nMAE).
- MASE: MAE / in-sample MAE of the one-day seasonal naive on each origin's training window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from apps.grid.forecasting.methods import BASELINES, METHODS, Context, NotEnoughHistory
from apps.grid.forecasting.series import CleanSeries, SeriesError


@dataclass
class MethodResult:
    method: str
    mape: float | None = None
    nmae: float | None = None
    mase: float | None = None
    fit_seconds: float = 0.0
    origins: int = 0
    skipped: str | None = None
    mape_excluded_points: int = 0

    def as_dict(self) -> dict:
        def r(x: float | None) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), 4)

        out = {
            "mape": r(self.mape),
            "nmae": r(self.nmae),
            "mase": r(self.mase),
            "fit_seconds": round(self.fit_seconds, 3),
            "origins": self.origins,
        }
        if self.mape_excluded_points:
            out["mape_excluded_points"] = self.mape_excluded_points
        if self.skipped:
            out["skipped"] = self.skipped
        return out


@dataclass
class BacktestResult:
    step_seconds: int
    horizon: int
    train_days: int
    test_days: int
    methods: dict[str, MethodResult] = field(default_factory=dict)
    chosen: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "step_seconds": self.step_seconds,
            "horizon": self.horizon,
            "train_days": self.train_days,
            "test_days": self.test_days,
            "methods": {k: v.as_dict() for k, v in self.methods.items()},
            "chosen": self.chosen,
            "notes": self.notes,
        }


def required_days(train_days: int, test_days: int, horizon_days: float) -> float:
    return train_days + test_days - 1 + horizon_days


def rolling_origin_backtest(
    clean: CleanSeries,
    *,
    horizon: int | None = None,
    train_days: int = 28,
    test_days: int = 7,
    methods: list[str] | None = None,
    min_train_days: int = 2,
    exog_fn=None,
) -> BacktestResult:
    per_day = clean.steps_per_day
    horizon = horizon or per_day
    if horizon <= 0:
        raise SeriesError("The horizon must be at least one step.")
    if train_days < 1 or test_days < 1:
        raise SeriesError("--train-days and --test-days must be at least 1.")
    y = clean.values.to_numpy(dtype=float)
    index = clean.values.index
    filled = clean.filled_mask if clean.filled_mask is not None else np.zeros(len(y), bool)
    # Origins: day boundaries (UTC) such that the whole horizon is inside the data.
    first = index[0]
    day_start = first.normalize()
    offset = int((day_start + pd.Timedelta(days=1) - first) / clean.step) % per_day
    origin_positions = list(range(offset, len(y) - horizon + 1, per_day))
    origin_positions = [p for p in origin_positions if p >= min_train_days * per_day]
    have_days = len(y) / per_day
    if len(origin_positions) < 1:
        need = min_train_days + horizon / per_day
        raise SeriesError(
            f"Too little history: {have_days:.1f} day(s) of data at a {clean.step} step; a "
            f"backtest with a horizon of {horizon} steps needs at least {need:.1f} days "
            f"({min_train_days} days of training before the first origin plus the horizon).",
            {"have_days": round(have_days, 2), "need_days": need},
        )
    notes = []
    if len(origin_positions) < test_days:
        notes.append(
            f"only {len(origin_positions)} origin(s) fit in {have_days:.1f} days of data "
            f"(asked for {test_days})"
        )
    origin_positions = origin_positions[-test_days:]
    result = BacktestResult(
        step_seconds=int(clean.step.total_seconds()),
        horizon=horizon,
        train_days=train_days,
        test_days=len(origin_positions),
        notes=notes,
    )
    chosen_methods = methods or list(METHODS)
    for name in chosen_methods:
        fn = METHODS[name]
        abs_err, abs_act, ape, scale_mae = [], [], [], []
        excluded = 0
        spent = 0.0
        skipped = None
        count = 0
        for pos in origin_positions:
            start = max(0, pos - train_days * per_day)
            hist = y[start:pos]
            ctx = Context(
                steps_per_day=per_day,
                origin_index=index[pos : pos + horizon],
                history_index=index[start:pos],
                exog_fn=exog_fn,
            )
            t0 = time.perf_counter()
            try:
                pred = fn(hist, horizon, ctx)
            except NotEnoughHistory as exc:
                skipped = f"not enough history before origin {index[pos].isoformat()}: {exc}"
                break
            spent += time.perf_counter() - t0
            count += 1
            actual = y[pos : pos + horizon]
            scored = ~filled[pos : pos + horizon]
            err = np.abs(pred - actual)[scored]
            act = np.abs(actual)[scored]
            abs_err.append(err)
            abs_act.append(act)
            if len(hist) > per_day:
                scale_mae.append(np.mean(np.abs(hist[per_day:] - hist[:-per_day])))
            threshold = 0.01 * (np.mean(np.abs(hist)) if len(hist) else 0.0)
            ok = act > max(threshold, 1e-12)
            excluded += int((~ok).sum())
            ape.append(err[ok] / act[ok])
        res = MethodResult(method=name, fit_seconds=spent, origins=count)
        if skipped or count == 0:
            res.skipped = skipped or "no origin"
        else:
            e = np.concatenate(abs_err)
            a = np.concatenate(abs_act)
            p = np.concatenate(ape)
            mae = float(e.mean()) if len(e) else float("nan")
            res.nmae = float(e.sum() / a.sum()) if a.sum() > 0 else None
            res.mape = float(p.mean()) if len(p) else None
            scale = float(np.mean(scale_mae)) if scale_mae else 0.0
            res.mase = mae / scale if scale > 0 else None
            res.mape_excluded_points = excluded
        result.methods[name] = res
    scored = {k: v.nmae for k, v in result.methods.items() if v.nmae is not None}
    if not scored:
        raise SeriesError("No method could be evaluated on this series.")
    result.chosen = min(scored, key=lambda k: (scored[k], k not in BASELINES))
    return result
