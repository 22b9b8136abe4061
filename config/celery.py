"""Celery application. Periodic schedules are declared here, in code, and reviewed like code."""

import os

from celery import Celery
from celery.schedules import crontab  # noqa: F401  (used by schedule entries as apps add them)
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("energysphere")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [
    Queue(name) for name in ("default", "ingest", "market", "chain", "grid", "reports")
]
app.autodiscover_tasks()

# Database connections: Django's policy, as for a web request (a task gives its connection back to
# the process's pool, which keeps DB_POOL_MIN_SIZE open; a broken one is closed), instead of
# Celery's default of closing the connection before and after every task. Without a pool that
# default made each ingest batch start a new PostgreSQL backend (fork, authentication, catalogue
# caches of every partition), a measurable PostgreSQL cost per reading at
# ingest rates (bench/RESULTS.md).
# Celery's Django fixup closes connections only every CELERY_DB_REUSE_MAX tasks when it is set.
app.conf["CELERY_DB_REUSE_MAX"] = 2**31


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(**_kwargs) -> None:
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect
def _production_guard(**_kwargs) -> None:
    """A worker signs chain transactions and sends e-mail: it refuses development secrets in
    production (apps/core/checks.py)."""
    from apps.core.checks import production_guard

    production_guard()


@worker_process_init.connect
def _gc_tune(**_kwargs) -> None:
    """Each pool process: freeze start-up objects out of the GC (apps/core/gc_tuning.py)."""
    from apps.core.gc_tuning import gc_tune_long_running

    gc_tune_long_running()


# Beat schedule: one entry per periodic job. Each app adds its entries in BEAT_SCHEDULE below
# (keep them here so the whole schedule is visible in one place).
BEAT_SCHEDULE: dict[str, dict] = {}
# chain: the outbox sweep recovers in-flight transactions and confirms mined ones; anchoring runs
# each minute over the recent closed intervals (idempotent); the indexer follows contract events.
BEAT_SCHEDULE["chain-outbox-sweep"] = {
    "task": "apps.chain.tasks.chain_outbox_sweep_task",
    "schedule": 5.0,
    "options": {"queue": "chain", "expires": 5},
}
BEAT_SCHEDULE["chain-meter-anchor"] = {
    "task": "apps.chain.tasks.meter_anchor_recent_task",
    "schedule": 60.0,
    "options": {"queue": "chain", "expires": 60},
}
# the audit log's hash chain: new rows sealed and the head anchored on chain (kind audit_head)
BEAT_SCHEDULE["chain-audit-head-anchor"] = {
    "task": "apps.chain.tasks.audit_head_anchor_task",
    "schedule": crontab(minute=7),
    "options": {"queue": "chain", "expires": 3000},
}
BEAT_SCHEDULE["chain-events-index"] = {
    "task": "apps.chain.tasks.chain_events_index_task",
    "schedule": 15.0,
    "options": {"queue": "chain", "expires": 15},
}
# grid: day-ahead forecasts fan out one task per series (parallel on the grid workers) after the
# day's data is in; dispatch re-plans when inputs change (checked every 15 min, rolled hourly);
# commands without ack expire; DR events follow the clock; power flow of the measured state each
# 15 min and of tomorrow's forecast state after the forecasts.
BEAT_SCHEDULE["grid-forecasts"] = {
    "task": "apps.grid.tasks.forecasts_schedule_task",
    "schedule": crontab(minute=30, hour=10),
    "options": {"queue": "grid"},
}
BEAT_SCHEDULE["grid-dispatch-replan"] = {
    "task": "apps.grid.tasks.dispatch_replan_task",
    "schedule": crontab(minute="*/15"),
    "options": {"queue": "grid", "expires": 600},
}
BEAT_SCHEDULE["grid-commands-expire"] = {
    "task": "apps.grid.tasks.device_commands_expire_task",
    "schedule": 60.0,
    "options": {"queue": "grid", "expires": 60},
}
BEAT_SCHEDULE["grid-dr-advance"] = {
    "task": "apps.grid.tasks.dr_events_advance_task",
    "schedule": 30.0,
    "options": {"queue": "grid", "expires": 30},
}
BEAT_SCHEDULE["grid-stability-measured"] = {
    "task": "apps.grid.tasks.stability_measured_task",
    "schedule": crontab(minute="2,17,32,47"),
    "options": {"queue": "grid", "expires": 600},
}
BEAT_SCHEDULE["grid-stability-forecast"] = {
    "task": "apps.grid.tasks.stability_forecast_task",
    "schedule": crontab(minute=30, hour=12),
    "options": {"queue": "grid"},
}
# market: automatic orders for the next intervals each 15 min (well before gate closure); the
# clearing task runs every 5 min and clears every interval whose (configurable) gate has closed;
# settlement runs hourly over periods that are over and metered, and re-settles corrections.
BEAT_SCHEDULE["market-orders-generate"] = {
    "task": "apps.market.tasks.market_orders_generate_task",
    "schedule": crontab(minute="1,16,31,46"),
    "options": {"queue": "market", "expires": 600},
}
BEAT_SCHEDULE["market-intervals-clear"] = {
    "task": "apps.market.tasks.market_intervals_clear_task",
    "schedule": crontab(minute="*/5"),
    "options": {"queue": "market", "expires": 240},
}
BEAT_SCHEDULE["market-settlement"] = {
    "task": "apps.market.tasks.market_settlement_task",
    "schedule": crontab(minute=20),
    "options": {"queue": "market", "expires": 3000},
}
# meters: re-enqueue raw batches a bridge stored but never handed over; refresh the rollups of
# the hours that changed; estimate gaps older than two intervals; create partitions ahead.
BEAT_SCHEDULE["meters-ingest-sweep"] = {
    "task": "apps.meters.tasks.ingest_sweep",
    "schedule": 30.0,
    "options": {"queue": "ingest", "expires": 30},
}
BEAT_SCHEDULE["meters-rollups-refresh"] = {
    "task": "apps.meters.tasks.rollups_refresh_task",
    "schedule": 60.0,
    "options": {"queue": "ingest", "expires": 60},
}
BEAT_SCHEDULE["meters-gaps-estimate"] = {
    "task": "apps.meters.tasks.gaps_estimate_task",
    "schedule": crontab(minute="5,20,35,50"),
    "options": {"queue": "ingest", "expires": 600},
}
# meters: members hear about a meter that stopped reporting (once per silence).
BEAT_SCHEDULE["meters-offline-notify"] = {
    "task": "apps.meters.tasks.meters_offline_notify_task",
    "schedule": crontab(minute=25),
    "options": {"queue": "ingest", "expires": 3000},
}
BEAT_SCHEDULE["meters-partitions-ahead"] = {
    "task": "apps.meters.tasks.partitions_create_ahead",
    "schedule": crontab(minute=7, hour="*/6"),
    "options": {"queue": "ingest"},
}
# incentives: hourly certificates from validated generation (idempotent over the last 48 hours,
# so late and corrected readings are certified when they arrive).
BEAT_SCHEDULE["incentives-certificates-issue"] = {
    "task": "apps.incentives.tasks.certificates_issue_recent_task",
    "schedule": crontab(minute=20),
    "options": {"queue": "default", "expires": 3000},
}
# incentives: the standing claim instruction, hourly after issuance (idempotent over 48 hours, so
# certificates that arrive late with a P2P settlement are still claimed for their own hour).
BEAT_SCHEDULE["incentives-certificates-auto-claim"] = {
    "task": "apps.incentives.tasks.certificates_auto_claim_recent_task",
    "schedule": crontab(minute=40),
    "options": {"queue": "default", "expires": 3000},
}
# incentives: on the 2nd, allocate last month's settled output of each shared plant to its
# shareholders (before the billing run of the 3rd puts their credits on the invoices).
BEAT_SCHEDULE["incentives-shared-assets-monthly"] = {
    "task": "apps.incentives.tasks.shared_assets_settle_last_month_task",
    "schedule": crontab(minute=0, hour=3, day_of_month=2),
    "options": {"queue": "default", "expires": 86400},
}
# incentives: redeemed reward tokens whose burn the chain confirmed become creditable.
BEAT_SCHEDULE["incentives-redemptions-confirm"] = {
    "task": "apps.incentives.tasks.redemptions_confirm_task",
    "schedule": 300.0,
    "options": {"queue": "default", "expires": 300},
}
# incentives: own-production rewards for yesterday, after its last hour is certified (:20 + lag).
BEAT_SCHEDULE["incentives-rewards-production-daily"] = {
    "task": "apps.incentives.tasks.rewards_production_daily_task",
    "schedule": crontab(minute=30, hour=3),
    "options": {"queue": "default", "expires": 3600},
}
# billing: on the 3rd of each month (settlement of the last days and late readings are in), draft
# the invoices of the month before; staff review and issue them. Reminders go out each morning.
BEAT_SCHEDULE["billing-run-monthly"] = {
    "task": "apps.billing.tasks.billing_run_monthly_task",
    "schedule": crontab(minute=0, hour=4, day_of_month=3),
    "options": {"queue": "default", "expires": 86400},
}
BEAT_SCHEDULE["billing-dunning-daily"] = {
    "task": "apps.billing.tasks.dunning_daily_task",
    "schedule": crontab(minute=30, hour=6),
    "options": {"queue": "default", "expires": 3600},
}
app.conf.beat_schedule = BEAT_SCHEDULE
