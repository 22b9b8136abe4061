"""Thin Celery tasks of the incentives app (small values in, one service call)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone


@shared_task(soft_time_limit=600, time_limit=660)  # queue: set by the beat entry
def certificates_issue_recent_task(hours: int = 48) -> dict:
    """Certify every complete device-hour of the last `hours` (idempotent: certified hours are
    skipped in one query, corrections issue or cancel the difference)."""
    from apps.incentives.services import certificates_issue

    now = timezone.now()
    summary = certificates_issue(start=now - timedelta(hours=hours), end=now, now=now)
    return {"hours": summary.hours, "certificates": summary.certificates, "wh": summary.wh}
