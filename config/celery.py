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
app.conf.beat_schedule = BEAT_SCHEDULE
