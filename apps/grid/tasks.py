"""Grid Celery tasks (queue "grid"): thin wrappers, ids or small values in, one service call."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.core.intervals import INTERVAL, floor_interval


@shared_task(time_limit=300, soft_time_limit=270)
def forecasts_schedule_task(aggregates_only: bool = False, now: str | None = None) -> int:
    """Fan out: one forecast task per series, run in parallel by the grid workers. `now` (ISO)
    issues the forecasts as of that time (the demo uses it to have a forecast for today)."""
    from apps.grid.services.forecasts import series_keys

    keys = [k for k in series_keys() if not (aggregates_only and k.startswith("meter:"))]
    for key in keys:
        forecast_series_task.delay(key, now)
    return len(keys)


@shared_task(time_limit=240, soft_time_limit=220, acks_late=True)
def forecast_series_task(series_key: str, now: str | None = None) -> int | None:
    from apps.grid.services.forecasts import forecast_issue

    try:
        forecast = forecast_issue(
            series_key=series_key, now=datetime.fromisoformat(now) if now else None
        )
    except ApplicationError:
        return None  # no history yet for this series: nothing to forecast
    if series_key.startswith("transformer:"):
        # The plan's inputs changed. Delayed, so a burst of transformer forecasts ends in one
        # new plan: later runs find the same inputs fingerprint and do nothing.
        dispatch_replan_task.apply_async(countdown=300, expires=900)
    return forecast.pk


@shared_task(time_limit=120, soft_time_limit=100)
def dispatch_replan_task() -> int | None:
    """Re-plan when forecasts/devices/prices changed, or hourly to roll the horizon."""
    from apps.grid.services.dispatch import dispatch_plan_create
    from apps.grid.services.dr_auto import dr_events_from_plan

    plan = dispatch_plan_create()
    if plan is not None:
        # What dispatch could not fix becomes a DR event (automatic DR policy).
        dr_events_from_plan(plan=plan)
    return plan.pk if plan else None


@shared_task(
    time_limit=120,
    soft_time_limit=100,
    autoretry_for=(OSError,),  # broker unreachable: commands stay pending, try again
    retry_backoff=5,
    max_retries=5,
)
def device_commands_publish_task(plan_id: int) -> int:
    from apps.grid.services.dispatch import device_commands_publish

    return device_commands_publish(plan_id=plan_id)


@shared_task(
    bind=False,
    autoretry_for=(OSError, ConnectionError),
    retry_backoff=5,
    max_retries=5,
)
def dr_cancellation_publish_task(event_pk: int) -> int:
    from apps.grid.services.dispatch import dr_cancellation_publish

    return len(dr_cancellation_publish(event_pk=event_pk))


@shared_task(time_limit=60, soft_time_limit=50)
def device_commands_expire_task() -> int:
    from apps.grid.services.dispatch import device_commands_expire

    return device_commands_expire()


@shared_task(time_limit=60, soft_time_limit=50)
def dr_events_advance_task() -> dict:
    from apps.grid.services.dr import dr_events_advance
    from apps.grid.services.dr_auto import dr_events_measure_due

    moved = dr_events_advance()
    moved["measured"] = len(dr_events_measure_due())
    return moved


@shared_task(time_limit=120, soft_time_limit=100)
def stability_measured_task() -> float | None:
    """Power flow at the last complete interval (measured state)."""
    from apps.grid.services.stability import stability_assess_measured

    assessment = stability_assess_measured(
        interval_start=floor_interval(timezone.now()) - 2 * INTERVAL
    )
    return assessment.score if assessment else None


@shared_task(time_limit=600, soft_time_limit=570)
def stability_forecast_task() -> dict:
    """Power flow of tomorrow's forecast state; alerts on overload/voltage violations."""
    from datetime import timedelta

    from apps.grid.services.stability import stability_assess_forecast

    day = floor_interval(timezone.now(), timedelta(days=1)) + timedelta(days=1)
    return stability_assess_forecast(day_start=day)
