"""Celery tasks of the chain app (queue `chain`): thin wrappers around one service call each."""

from __future__ import annotations

from celery import shared_task

from apps.chain.outbox import chain_outbox_sweep


@shared_task(
    name="apps.chain.tasks.chain_intent_process_task",
    acks_late=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=5,
)
def chain_intent_process_task(intent_id: int) -> dict[str, int]:
    """Process the outbox (the intent `intent_id` and everything else due, in nonce order)."""
    return chain_outbox_sweep()


@shared_task(name="apps.chain.tasks.chain_outbox_sweep_task", acks_late=True)
def chain_outbox_sweep_task() -> dict[str, int]:
    """Periodic: recover in-flight rows, send due rows, confirm mined ones."""
    return chain_outbox_sweep()
