"""What the staff home shows of the background processes: each beat job's last run and the
workers seen recently, recorded in the cache by the workers themselves (`task_postrun`).

Only jobs of the beat schedule are recorded (one cache write per run), and a worker's presence at
most every `WORKER_MARK_EVERY_S` per process, so the ingest path pays nothing measurable."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from celery import current_app
from django.core.cache import cache

BEAT_KEY = "cockpit:beat:last"
WORKERS_KEY = "cockpit:workers"
WORKER_MARK_EVERY_S = 15.0
KEEP_S = 7 * 24 * 3600
_last_mark = {"at": 0.0}


def beat_task_names() -> dict[str, str]:
    """task name → schedule entry name, for every entry of the beat schedule."""
    return {entry["task"]: name for name, entry in (current_app.conf.beat_schedule or {}).items()}


def task_run_record(sender: Any = None, task: Any = None, **_kwargs: Any) -> None:
    """`task_postrun` receiver: a beat job's finish time, and this worker's presence."""
    name = getattr(task, "name", None) or getattr(sender, "name", "")
    now = datetime.now(UTC).isoformat()
    if name in beat_task_names():
        runs = cache.get(BEAT_KEY) or {}
        runs[name] = now
        cache.set(BEAT_KEY, runs, KEEP_S)
    hostname = getattr(getattr(task, "request", None), "hostname", None)
    if hostname and time.monotonic() - _last_mark["at"] >= WORKER_MARK_EVERY_S:
        _last_mark["at"] = time.monotonic()
        workers = cache.get(WORKERS_KEY) or {}
        workers[hostname] = now
        cache.set(WORKERS_KEY, workers, KEEP_S)


def beat_last_runs() -> dict[str, datetime]:
    return {k: datetime.fromisoformat(v) for k, v in (cache.get(BEAT_KEY) or {}).items()}


def workers_last_seen() -> dict[str, datetime]:
    return {k: datetime.fromisoformat(v) for k, v in (cache.get(WORKERS_KEY) or {}).items()}
