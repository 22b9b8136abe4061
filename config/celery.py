"""Celery application. Periodic schedules are declared here, in code, and reviewed like code."""

import os

from celery import Celery
from celery.schedules import crontab  # noqa: F401  (used by schedule entries as apps add them)
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("energysphere")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [
    Queue(name) for name in ("default", "ingest", "market", "chain", "grid", "reports")
]
app.autodiscover_tasks()

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
BEAT_SCHEDULE["chain-events-index"] = {
    "task": "apps.chain.tasks.chain_events_index_task",
    "schedule": 15.0,
    "options": {"queue": "chain", "expires": 15},
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
app.conf.beat_schedule = BEAT_SCHEDULE
