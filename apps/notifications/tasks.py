"""Celery tasks of notifications. Thin: one delivery id in, one service call."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.notifications.services import notification_deliver


@shared_task(
    bind=True,
    name="apps.notifications.tasks.notification_deliver_task",
    time_limit=120,
    soft_time_limit=100,
    max_retries=None,
)
def notification_deliver_task(self, delivery_id: int) -> str:
    """Send one delivery; a transient failure is retried with exponential backoff (30 s, 60 s,
    2 min, … at most 30 min) until NOTIFICATIONS_MAX_RETRIES, then recorded as failed."""
    final = self.request.retries >= settings.NOTIFICATIONS_MAX_RETRIES
    status = notification_deliver(delivery_id=delivery_id, final_attempt=final)
    if status == "retry":
        raise self.retry(countdown=min(30 * 2**self.request.retries, 1800))
    return status
