"""Reads of the chain app for other apps (reports, verification): typed records, no model rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from apps.chain.models import ChainIntent, MeterAnchor


@dataclass(frozen=True, slots=True)
class MeterAnchorRecord:
    """One MeterOracle anchor: the Merkle root of an interval's validated readings."""

    interval_start: datetime
    version: int
    root: str
    leaf_count: int
    tx_hash: str
    intent_id: int


@dataclass(frozen=True, slots=True)
class ChainIntentRecord:
    """One outbox intent as a report shows it: its id, intent name and transaction hash."""

    id: int
    intent: str
    tx_hash: str


def _anchor_record(anchor: MeterAnchor) -> MeterAnchorRecord:
    return MeterAnchorRecord(
        interval_start=anchor.interval_start,
        version=anchor.version,
        root=anchor.root,
        leaf_count=anchor.leaf_count,
        tx_hash=anchor.intent.tx_hash,
        intent_id=anchor.intent_id,
    )


def meter_anchors_between(*, start: datetime, end: datetime) -> list[MeterAnchorRecord]:
    """The meter anchors of intervals in [start, end), by interval and version (one query)."""
    rows = (
        MeterAnchor.objects.filter(interval_start__gte=start, interval_start__lt=end)
        .select_related("intent")
        .order_by("interval_start", "version")
    )
    return [_anchor_record(a) for a in rows]


def meter_anchor_get(*, interval_start: datetime, version: int) -> MeterAnchorRecord | None:
    """One interval's anchor of a given version, or None (one query)."""
    anchor = (
        MeterAnchor.objects.filter(interval_start=interval_start, version=version)
        .select_related("intent")
        .first()
    )
    return _anchor_record(anchor) if anchor is not None else None


def chain_intents(*, intent_ids: Iterable[int]) -> list[ChainIntentRecord]:
    """The given intents that exist, by id (one query)."""
    rows = (
        ChainIntent.objects.filter(pk__in=list(intent_ids))
        .order_by("pk")
        .values_list("pk", "intent", "tx_hash")
    )
    return [ChainIntentRecord(*row) for row in rows]


def chain_intent_get(*, intent_id: int) -> ChainIntentRecord | None:
    """One intent, or None (one query)."""
    row = ChainIntent.objects.filter(pk=intent_id).values_list("pk", "intent", "tx_hash").first()
    return ChainIntentRecord(*row) if row is not None else None


def chain_intent_exists(*, idempotency_key: str) -> bool:
    """Whether an intent was already submitted under this idempotency key (one query)."""
    return ChainIntent.objects.filter(idempotency_key=idempotency_key).exists()


#: An intent not final after this long is "stuck" on the staff home.
INTENT_STUCK_AFTER_S = 600


def staff_queue_counts(*, now: datetime) -> dict[str, int]:
    """The staff home's chain work: failed intents and intents in flight for too long."""
    from datetime import timedelta

    in_flight = [ChainIntent.Status.PENDING, ChainIntent.Status.SIGNED, ChainIntent.Status.SENT,
                 ChainIntent.Status.MINED]  # fmt: skip
    return {
        "chain_intents_failed": ChainIntent.objects.filter(
            status=ChainIntent.Status.FAILED
        ).count(),
        "chain_intents_stuck": ChainIntent.objects.filter(
            status__in=in_flight, updated_at__lt=now - timedelta(seconds=INTENT_STUCK_AFTER_S)
        ).count(),
    }


def chain_health_summary(*, now: datetime) -> dict[str, object]:
    """Outbox depth and the indexer's progress (last block scanned, seconds since it moved)."""
    from apps.chain.models import IndexerCursor

    in_flight = [ChainIntent.Status.PENDING, ChainIntent.Status.SIGNED, ChainIntent.Status.SENT,
                 ChainIntent.Status.MINED]  # fmt: skip
    cursor = IndexerCursor.objects.order_by("-updated_at").first()
    return {
        "outbox_in_flight": ChainIntent.objects.filter(status__in=in_flight).count(),
        "indexer_last_block": cursor.last_block if cursor else None,
        "indexer_idle_s": (now - cursor.updated_at).total_seconds() if cursor else None,
    }
