"""Celery tasks of the market (queue "market", routed in config/settings/celery.py).

Thin: small plain arguments in, one service call, idempotent by construction.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.core.intervals import INTERVAL, floor_interval
from apps.market import conf

logger = logging.getLogger(__name__)


@shared_task(
    name="apps.market.tasks.market_orders_generate_task", time_limit=300, soft_time_limit=270
)
def market_orders_generate_task() -> int:
    """Automatic orders for the next intervals whose gate is still open."""
    from apps.market.services import orders_generate

    now = timezone.now()
    start = floor_interval(now) + INTERVAL
    created = 0
    for k in range(int(conf.get("MARKET_ORDER_HORIZON_INTERVALS"))):
        try:
            created += orders_generate(interval_start=start + INTERVAL * k, now=now)
        except ApplicationError as exc:  # e.g. no tariff configured yet
            logger.warning("no automatic orders for %s: %s", start + INTERVAL * k, exc.message)
    return created


@shared_task(
    name="apps.market.tasks.market_intervals_clear_task", time_limit=300, soft_time_limit=270
)
def market_intervals_clear_task() -> list[str]:
    """Clear every recent interval whose gate has closed (catches up after an outage)."""
    from apps.market.models import ClearingResult, SettlementRun
    from apps.market.selectors import gate_closure, period_bounds
    from apps.market.services import interval_clear

    now = timezone.now()
    candidate = floor_interval(now) + INTERVAL
    done = []
    for k in range(8):  # the next interval (if its gate closed) and the previous two hours
        start = candidate - INTERVAL * k
        if now < gate_closure(interval_start=start):
            continue
        if ClearingResult.objects.filter(interval_start=start).exists():
            continue
        period_start, _ = period_bounds(at=start)
        if (
            SettlementRun.objects.filter(period_start=period_start)
            .exclude(status=SettlementRun.Status.OPEN)
            .exists()
        ):
            continue
        try:
            interval_clear(interval_start=start, now=now)
        except ApplicationError as exc:  # e.g. no tariff configured yet
            logger.warning("interval %s not cleared: %s", start, exc.message)
            continue
        done.append(start.isoformat())
    return done


@shared_task(name="apps.market.tasks.market_settlement_task", time_limit=1800, soft_time_limit=1740)
def market_settlement_task() -> dict:
    """Settle every run whose period is over and metered; re-settle corrected data."""
    from apps.market.services import settlement_corrections_scan, settlement_runs_process

    now = timezone.now()
    return {
        "settled": settlement_runs_process(now=now),
        "resettled": settlement_corrections_scan(now=now),
    }
