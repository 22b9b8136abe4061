"""Celery tasks of billing. Thin: plain arguments in, one service call."""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.billing.services import billing_run

logger = logging.getLogger(__name__)


@shared_task(
    name="apps.billing.tasks.billing_run_monthly_task", time_limit=3600, soft_time_limit=3300
)
def billing_run_monthly_task() -> dict:
    """Draft the invoices of the month that just ended (cooperative time zone). Idempotent."""
    today = timezone.now().astimezone(ZoneInfo(settings.COOPERATIVE_TIME_ZONE)).date()
    previous = today.replace(day=1) - timedelta(days=1)
    summary = billing_run(period=f"{previous:%Y-%m}", actor="beat")
    logger.info("billing run %s: %s invoices", summary["period"], summary["invoices"])
    return summary


@shared_task(name="apps.billing.tasks.document_email_task", time_limit=120, soft_time_limit=100)
def document_email_task(invoice_id: int, reminder_id: int | None = None) -> int:
    """Render the document's PDF and e-mail it (queued when the issuing transaction commits)."""
    from apps.billing.services.mail import document_email_send

    return document_email_send(invoice_id=invoice_id, reminder_id=reminder_id).pk


@shared_task(name="apps.billing.tasks.dunning_daily_task", time_limit=1800, soft_time_limit=1700)
def dunning_daily_task() -> int:
    """Send the reminders due today (cooperative date). Idempotent within a day."""
    from apps.billing.services import dunning_run

    today = timezone.now().astimezone(ZoneInfo(settings.COOPERATIVE_TIME_ZONE)).date()
    return len(dunning_run(today=today, actor="beat"))
