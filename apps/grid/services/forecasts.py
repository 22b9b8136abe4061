"""Forecast services: per-series history from validated meter data, model choice by
rolling-origin backtest, day-ahead forecasts stored with model id and issue time."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.intervals import INTERVAL, ensure_utc, floor_interval
from apps.grid import conf
from apps.grid.forecasting.backtest import rolling_origin_backtest
from apps.grid.forecasting.methods import METHODS, Context, NotEnoughHistory
from apps.grid.forecasting.series import CleanSeries, SeriesError, regularise
from apps.grid.forecasting.solar import clear_sky_fn
from apps.grid.models import ConnectionPoint, Feeder, Forecast, ForecastModelChoice, Transformer
from apps.meters.selectors import interval_totals

logger = logging.getLogger(__name__)
DAY = timedelta(days=1)


def series_keys() -> list[str]:
    """Every series the scheduler forecasts: community, feeders, transformers, meters."""
    from apps.meters.models import Meter

    keys = ["community:load", "community:pv"]
    for fid in Feeder.objects.order_by("pk").values_list("pk", flat=True):
        keys += [f"feeder:{fid}:load", f"feeder:{fid}:pv"]
    for tid in Transformer.objects.order_by("pk").values_list("pk", flat=True):
        keys += [f"transformer:{tid}:load", f"transformer:{tid}:pv"]
    for serial, kind in Meter.objects.filter(active_to__isnull=True).values_list(
        "serial", "asset_kind"
    ):
        pv = kind in (Meter.AssetKind.PV, Meter.AssetKind.SHARED_PV)
        keys.append(f"meter:{serial}:{'pv' if pv else 'load'}")
    return keys


def _parse(series_key: str) -> tuple[str, str, str]:
    parts = series_key.split(":")
    if parts[0] == "community" and len(parts) == 2 and parts[1] in ("load", "pv"):
        return "community", "", parts[1]
    if (
        len(parts) == 3
        and parts[0] in ("meter", "transformer", "feeder")
        and parts[2]
        in (
            "load",
            "pv",
        )
    ):
        return parts[0], parts[1], parts[2]
    raise ApplicationError(f"Unknown series key {series_key!r}.", {"series_key": series_key})


def series_history_wh(*, series_key: str, start: datetime, end: datetime) -> pd.Series:
    """Validated Wh per interval in [start, end): import for load, export for PV."""
    scope, ident, kind = _parse(series_key)
    serial, points = None, None
    if scope == "meter":
        serial = ident
    elif scope == "transformer":
        points = ConnectionPoint.objects.filter(transformer_id=int(ident)).values_list(
            "pk", flat=True
        )
    elif scope == "feeder":
        points = ConnectionPoint.objects.filter(transformer__feeder_id=int(ident)).values_list(
            "pk", flat=True
        )
    data = interval_totals(
        start=start, end=end, meter_serial=serial, connection_point_ids=points
    )  # one query: `points` is a subquery
    if not data:
        return pd.Series(dtype=float)
    index = pd.DatetimeIndex([row.interval_start for row in data]).tz_convert("UTC")
    values = [row.import_wh if kind == "load" else row.export_wh for row in data]
    return pd.Series([float(v) for v in values], index=index)


def _site_of(series_key: str) -> tuple[float, float]:
    scope, ident, _ = _parse(series_key)
    cp = None
    if scope == "meter":
        cp = ConnectionPoint.objects.filter(meters__serial=ident).first()
    elif scope == "transformer":
        cp = ConnectionPoint.objects.filter(transformer_id=int(ident)).first()
    if cp is not None and cp.latitude is not None and cp.longitude is not None:
        return cp.latitude, cp.longitude
    from apps.grid.models import Substation

    sub = Substation.objects.exclude(latitude=None).first()
    if sub is not None and sub.latitude is not None and sub.longitude is not None:
        return sub.latitude, sub.longitude
    return conf.get("GRID_DEFAULT_LATITUDE"), conf.get("GRID_DEFAULT_LONGITUDE")


def _clean(history: pd.Series) -> CleanSeries:
    """History on the 15-minute grid; missing intervals filled explicitly (flagged)."""
    if len(history) < 3:
        raise SeriesError("no metered history for this series yet")
    return regularise(history.sort_index(), INTERVAL)


@transaction.atomic
def forecast_model_choose(
    *, series_key: str, now: datetime | None = None, methods: list[str] | None = None
) -> ForecastModelChoice:
    """Backtest every method on the series' recent history and store the choice and metrics."""
    now = ensure_utc(now or timezone.now())
    train, test = conf.get("GRID_FORECAST_TRAIN_DAYS"), conf.get("GRID_FORECAST_TEST_DAYS")
    scope, _, kind = _parse(series_key)
    if scope == "meter":
        test = conf.get("GRID_METER_TEST_DAYS")
        methods = methods or [m for m in conf.get("GRID_METER_METHODS") if m in METHODS]
    end = floor_interval(now, DAY)
    history = series_history_wh(series_key=series_key, start=end - (train + test) * DAY, end=end)
    try:
        clean = _clean(history)
        result = rolling_origin_backtest(
            clean,
            train_days=train,
            test_days=test,
            methods=methods,
            exog_fn=clear_sky_fn(*_site_of(series_key)) if kind == "pv" else None,
        )
    except SeriesError as exc:
        raise ApplicationError(
            f"Cannot choose a model for {series_key}: {exc.message}", exc.details
        ) from exc
    choice, _ = ForecastModelChoice.objects.update_or_create(
        series_key=series_key,
        defaults={
            "kind": kind,
            "method": result.chosen,
            "metrics": {k: v.as_dict() for k, v in result.methods.items()},
            "step_seconds": result.step_seconds,
            "train_days": train,
            "test_days": result.test_days,
            "chosen_at": now,
        },
    )
    audit_log_write(
        event=AuditEvent.FORECAST_MODEL_CHOSEN,
        target=choice,
        details={"series_key": series_key, "method": result.chosen, "notes": result.notes},
    )
    return choice


def _impossible_key(series_key: str, data_end: datetime) -> str:
    return f"grid:model-choice-impossible:{series_key}:{data_end:%Y%m%d}"


def _model_choice(*, series_key: str, now: datetime) -> ForecastModelChoice | None:
    """The series' model choice, cached by series and age: a backtest runs only when there is
    no choice or it is older than GRID_MODEL_CHOICE_MAX_AGE_DAYS. A backtest that was not
    possible (too little history) is not tried again on the same data: the attempt is
    remembered per series and history end (UTC day) until a new day of data is in; meanwhile an
    older choice is kept (else the daily seasonal naive is used)."""
    choice = ForecastModelChoice.objects.filter(series_key=series_key).first()
    max_age = timedelta(days=conf.get("GRID_MODEL_CHOICE_MAX_AGE_DAYS"))
    if choice is not None and now - choice.chosen_at <= max_age:
        return choice
    impossible = _impossible_key(series_key, floor_interval(now, DAY))
    if cache.get(impossible):
        return choice
    try:
        return forecast_model_choose(series_key=series_key, now=now)
    except ApplicationError as exc:
        logger.info("no backtest possible for %s (%s); not retried before new data",
                    series_key, exc.message)  # fmt: skip
        cache.set(impossible, 1, int(2 * DAY.total_seconds()))
        return choice


@transaction.atomic
def forecast_issue(*, series_key: str, now: datetime | None = None) -> Forecast:
    """Issue the day-ahead forecast (next UTC day, one value per 15 minutes) with the series'
    chosen method (re-chosen by backtest when missing or stale)."""
    now = ensure_utc(now or timezone.now())
    choice = _model_choice(series_key=series_key, now=now)
    method = choice.method if choice else "seasonal_naive_daily"
    start = floor_interval(now, DAY) + DAY
    per_day = int(DAY / INTERVAL)
    train = conf.get("GRID_FORECAST_TRAIN_DAYS")
    # History up to the last complete interval before now; gap to `start` is forecast too.
    hist_end = floor_interval(now)
    history = series_history_wh(series_key=series_key, start=hist_end - train * DAY, end=hist_end)
    try:
        clean = _clean(history)
    except SeriesError as exc:
        raise ApplicationError(f"Cannot forecast {series_key}: {exc.message}") from exc
    values = clean.values
    last = values.index[-1] + INTERVAL
    lead = int((start - last) / INTERVAL)
    horizon = lead + per_day
    _, _, kind = _parse(series_key)
    index = pd.date_range(last, periods=horizon, freq="15min")
    ctx = Context(
        steps_per_day=per_day,
        origin_index=index,
        history_index=values.index,
        exog_fn=clear_sky_fn(*_site_of(series_key)) if kind == "pv" else None,
    )
    try:
        pred = METHODS[method](values.to_numpy(dtype=float), horizon, ctx)
    except NotEnoughHistory:
        method = "seasonal_naive_daily"
        pred = METHODS[method](values.to_numpy(dtype=float), horizon, ctx)
    day_values = np.clip(np.rint(pred[lead:]), 0, None).astype(int).tolist()  # Wh ≥ 0
    forecast = Forecast.objects.create(
        series_key=series_key,
        kind=kind,
        method=method,
        issued_at=now,
        start=start,
        step_seconds=int(INTERVAL.total_seconds()),
        values_wh=day_values,
        model_choice=choice,
    )
    return forecast
