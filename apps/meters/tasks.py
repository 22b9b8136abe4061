"""Thin Celery tasks (queue "ingest" by the apps.meters.tasks.* route): ids in, one service call."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

# config/__init__.py does not import the Celery app, so without this a process that only
# imports tasks (the bridge) would send with an unconfigured default app (no routes, wrong queue).
import config.celery  # noqa: F401,E402,I001


# A database that restarts or fails over (connection refused, or a pooled connection the server
# closed) fails the batch's attempt and rolls it back: try again within seconds (1, 2,
# 4, 8, 16, 16 s, jittered) instead of leaving the batch to the beat sweeper (30-60 s later).
# An attempt that reached the database is counted (METER_INGEST_MAX_ATTEMPTS); one that did not
# connect is not. psycopg's own classes too: the COPY paths use the psycopg cursor directly, and
# an error there (AdminShutdown when the server stops) reaches here unwrapped by Django.
@shared_task(
    acks_late=True,
    autoretry_for=(
        OperationalError,
        InterfaceError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
    ),
    max_retries=6,
    retry_backoff=1,
    retry_backoff_max=16,
)
def ingest_batch(batch_id: int) -> dict:
    from apps.meters.readings.pipeline import reading_batch_ingest

    result = reading_batch_ingest(batch_id=batch_id)
    return {"batch": batch_id, "accepted": result.accepted, "rejected": result.rejected}


@shared_task
def ingest_sweep() -> int:
    """Re-enqueue batches that were stored but never processed (bridge died before enqueue)."""
    from apps.meters.readings.pipeline import pending_batches

    ids = pending_batches()
    for batch_id in ids:
        ingest_batch.delay(batch_id)
    return len(ids)


@shared_task
def partitions_create_ahead() -> list[str]:
    from apps.meters.readings.partitions import partitions_ensure

    now = timezone.now()
    return partitions_ensure(start=now - timedelta(days=1), end=now + timedelta(days=40))


@shared_task
def rollups_refresh_task() -> int:
    from apps.meters.readings.rollups import rollups_refresh

    return rollups_refresh()


@shared_task
def gaps_estimate_task() -> int:
    """Estimate gaps of the last day that are older than two intervals (late data gets a chance
    to arrive first; if it still comes, it replaces the estimate as a new version)."""
    from apps.meters.services import gaps_estimate

    now = timezone.now()
    return gaps_estimate(start=now - timedelta(days=1), end=now - timedelta(minutes=30))


@shared_task(time_limit=300, soft_time_limit=280)
def meters_offline_notify_task() -> int:
    """Notify the members whose meters went silent (hourly)."""
    from apps.meters.services import meters_offline_notify

    return meters_offline_notify()
