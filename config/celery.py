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
app.conf.beat_schedule = BEAT_SCHEDULE
