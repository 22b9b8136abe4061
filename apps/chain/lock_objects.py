"""Row locks of the chain app (see apps/core/locks.py).

The outbox sweep and the indexer both write outbox rows (`ChainIntent`): the sweep locks the
rows it signs in primary-key order and records receipts in nonce order, while the indexer
promotes rows in log order. The indexer therefore never waits for an outbox row
(`sent_intent_lock_for_indexer` skips a locked one), so the two cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable

from apps.chain.models import ChainAccount, ChainAlert, ChainIntent, IndexerCursor
from apps.core.locks import lock_first, lock_or_create, lock_row, lock_rows


def chain_intent_lock(intent_id: int) -> ChainIntent:
    return lock_row(ChainIntent.objects.all(), intent_id)


def pending_intents_lock_for_signing(intent_ids: Iterable[int]) -> list[ChainIntent]:
    """The rows among `intent_ids` that are still pending, locked in primary-key order."""
    return lock_rows(ChainIntent.objects.filter(status=ChainIntent.Status.PENDING), intent_ids)


def sent_intent_lock_for_indexer(tx_hash: str) -> ChainIntent | None:
    """The sent row whose transactions include `tx_hash`, unless another transaction (the outbox
    sweep) holds it: then None, and the sweep records the receipt itself."""
    return lock_first(
        ChainIntent.objects.filter(
            tx_hashes__contains=[tx_hash], status__in=[ChainIntent.Status.SENT]
        ),
        skip_locked=True,
    )


def chain_account_lock(*, network: str, address: str) -> ChainAccount:
    """The sender's nonce row (created on first use); serialises nonce assignment."""
    account, _ = lock_or_create(ChainAccount.objects.all(), network=network, address=address)
    return account


def indexer_cursor_lock(network: str) -> IndexerCursor:
    """The network's indexer cursor (created on first use); one indexer run at a time."""
    cursor, _ = lock_or_create(IndexerCursor.objects.all(), network=network)
    return cursor


def open_chain_alerts_lock(alert_ids: Iterable[int]) -> list[ChainAlert]:
    """The given alerts that are not acknowledged yet, locked in primary-key order."""
    return lock_rows(ChainAlert.objects.filter(acknowledged_at=None), alert_ids)
