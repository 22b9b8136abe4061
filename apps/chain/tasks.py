"""Celery tasks of the chain app (queue `chain`): thin wrappers around one service call each."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import OUTBOX_SWEEP_QUEUED_KEY


@shared_task(
    name="apps.chain.tasks.chain_intent_process_task",
    acks_late=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=5,
)
def chain_intent_process_task(intent_id: int) -> dict[str, int]:
    """Process the outbox (the intent `intent_id` and everything else due, in nonce order).

    Queued once per burst of submits (apps.chain.services._enqueue): the guard is cleared before
    the sweep reads the due rows, so a row committed from now on queues the next sweep."""
    cache.delete(OUTBOX_SWEEP_QUEUED_KEY)
    return chain_outbox_sweep()


@shared_task(name="apps.chain.tasks.chain_outbox_sweep_task", acks_late=True)
def chain_outbox_sweep_task() -> dict[str, int]:
    """Periodic: recover in-flight rows, send due rows, confirm mined ones."""
    return chain_outbox_sweep()


@shared_task(name="apps.chain.tasks.meter_anchor_recent_task", acks_late=True)
def meter_anchor_recent_task() -> list[int]:
    """Periodic: anchor the Merkle roots of recent closed intervals' validated readings."""
    from apps.chain.anchoring import meter_anchor_recent

    return meter_anchor_recent()


@shared_task(name="apps.chain.tasks.audit_head_anchor_task", acks_late=True)
def audit_head_anchor_task() -> int | None:
    """Periodic: seal the audit log's new rows and anchor its head hash on chain."""
    from apps.chain.services import audit_head_anchor

    intent = audit_head_anchor()
    return intent.pk if intent else None


@shared_task(name="apps.chain.tasks.chain_events_index_task", acks_late=True)
def chain_events_index_task() -> int:
    """Periodic: index new contract events (persisted block cursor; idempotent re-scan)."""
    from apps.chain.indexer import chain_events_index

    return chain_events_index()
