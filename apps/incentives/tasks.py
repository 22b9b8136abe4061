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


@shared_task(soft_time_limit=600, time_limit=660)  # queue: set by the beat entry
def certificates_auto_claim_recent_task(hours: int = 48) -> dict:
    """The standing claim instruction: claim members' certificates of the last `hours` against
    their own consumption of the same hour (idempotent: claimed Wh are never claimed again)."""
    from apps.incentives.services import certificates_auto_claim

    now = timezone.now()
    summary = certificates_auto_claim(start=now - timedelta(hours=hours), end=now)
    return {"members": summary.members, "certificates": summary.certificates, "wh": summary.wh}


@shared_task(soft_time_limit=600, time_limit=660)  # queue: set by the beat entry
def shared_assets_settle_last_month_task() -> dict:
    """Allocate last month of every shared plant to its shareholders (idempotent per month)."""
    from apps.incentives.services import shared_assets_settle_month

    now = timezone.now()
    last_month = (now.replace(day=1) - timedelta(days=1)).date()
    return shared_assets_settle_month(month=last_month, now=now)


@shared_task(soft_time_limit=120, time_limit=150)  # queue: set by the beat entry
def redemptions_confirm_task() -> int:
    """Mark redemptions burned once their on-chain burn is confirmed."""
    from apps.incentives.services import redemptions_confirm

    return redemptions_confirm()


@shared_task(soft_time_limit=300, time_limit=330)  # queue: set by the beat entry
def rewards_production_daily_task() -> int:
    """Own-production rewards for yesterday (UTC), once its certificates are issued."""
    from apps.incentives.services import rewards_grant_for_production

    yesterday = (timezone.now() - timedelta(days=1)).date()
    return len(rewards_grant_for_production(day=yesterday))
