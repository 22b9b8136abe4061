"""Reads of the chain app for other apps (reports, verification): typed records, no model rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apps.chain.models import ChainEvent, ChainIntent, MeterAnchor


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


def chain_intents_confirmed(*, intent_ids: Iterable[int]) -> set[int]:
    """Which of the given intents are confirmed on chain (one query)."""
    return set(
        ChainIntent.objects.filter(
            pk__in=list(intent_ids), status=ChainIntent.Status.CONFIRMED
        ).values_list("pk", flat=True)
    )


def chain_intent_exists(*, idempotency_key: str) -> bool:
    """Whether an intent was already submitted under this idempotency key (one query)."""
    return ChainIntent.objects.filter(idempotency_key=idempotency_key).exists()


@dataclass(frozen=True, slots=True)
class DocumentAnchorStatus:
    """Whether a document digest is anchored on chain, and where that answer comes from.

    `source` is "chain" when MeterOracle.documentAnchoredAt answered, "local record" when the
    chain was unreachable and the answer comes from the outbox and indexer records (then
    `chain_error` says why). `intent_status` is the outbox state of our own anchor intent ("" when
    we never queued one)."""

    kind: str
    digest: str
    anchored: bool
    source: str
    anchored_at: datetime | None = None
    intent_id: int | None = None
    intent_status: str = ""
    tx_hash: str = ""
    contract_address: str = ""
    chain_error: str = ""


def _document_intent(kind: str, digest: str) -> ChainIntent | None:
    from apps.chain.client import network_name

    key = f"document_anchor:{network_name()}:{kind}:{digest.lower()}"
    return ChainIntent.objects.filter(idempotency_key=key).first()


def _document_event(kind: str, digest: str) -> ChainEvent | None:
    from apps.chain.client import network_name
    from apps.chain.intents import document_kind

    return ChainEvent.objects.filter(
        network=network_name(),
        contract="MeterOracle",
        name="DocumentAnchored",
        args__kind="0x" + document_kind(kind).hex(),
        args__digest=digest.lower(),
    ).first()


def document_anchor_status(*, kind: str, digest: str) -> DocumentAnchorStatus:
    """Ask the chain whether (kind, digest) is anchored; fall back to the local record (our
    outbox intent and the indexed DocumentAnchored event) when the chain cannot answer."""
    from datetime import UTC

    from apps.chain import client
    from apps.chain.intents import document_kind

    digest = digest.lower()
    intent = _document_intent(kind, digest)
    common: dict[str, Any] = {
        "kind": kind,
        "digest": digest,
        "intent_id": intent.pk if intent else None,
        "intent_status": intent.status if intent else "",
        "tx_hash": intent.tx_hash if intent else "",
    }
    try:
        oracle = client.contract("MeterOracle")
        client.check_chain_id(oracle.w3)
        at = int(
            oracle.functions.documentAnchoredAt(
                document_kind(kind), bytes.fromhex(digest.removeprefix("0x"))
            ).call()
        )
    except Exception as exc:  # noqa: BLE001 - any failure to ask the chain: use the local record
        event = _document_event(kind, digest)
        anchored = event is not None or (
            intent is not None and intent.status == ChainIntent.Status.CONFIRMED
        )
        anchored_at = None
        if event is not None and str(event.args.get("anchoredAt", "")).isdigit():
            anchored_at = datetime.fromtimestamp(int(event.args["anchoredAt"]), tz=UTC)
        return DocumentAnchorStatus(
            anchored=anchored,
            source="local record",
            anchored_at=anchored_at,
            chain_error=f"{exc.__class__.__name__}: {exc}"[:300],
            **common,
        )
    return DocumentAnchorStatus(
        anchored=at > 0,
        source="chain",
        anchored_at=datetime.fromtimestamp(at, tz=UTC) if at else None,
        contract_address=oracle.address,
        **common,
    )


def document_anchors_confirmed(*, kind: str, limit: int = 20) -> list[str]:
    """The digests of our confirmed anchors of `kind`, newest first (one query)."""
    from apps.chain.client import network_name

    rows = ChainIntent.objects.filter(
        intent="document_anchor",
        network=network_name(),
        status=ChainIntent.Status.CONFIRMED,
        payload__kind=kind,
    ).order_by("-pk")[:limit]
    return [str(r.payload["digest"]) for r in rows]


@dataclass(frozen=True, slots=True)
class SettlementAppliedRecord:
    """One indexed `EnergyTrading.SettlementApplied` event: the money deltas (integer minor
    units) the chain applied per account, with the transaction that applied them."""

    settlement_id: int
    tx_hash: str
    block_number: int
    deltas: dict[str, int]  # lower-case address → delta


def settlements_applied(*, settlement_ids: Iterable[int]) -> dict[int, SettlementAppliedRecord]:
    """The indexed SettlementApplied events of these settlement ids on this network (one query);
    a settlement not (yet) applied on chain, or not indexed yet, is absent."""
    from apps.chain.client import network_name

    ids = sorted(set(settlement_ids))
    if not ids:
        return {}
    rows = ChainEvent.objects.filter(
        network=network_name(),
        contract="EnergyTrading",
        name="SettlementApplied",
        args__settlementId__in=ids,
    ).order_by("block_number", "log_index")
    out: dict[int, SettlementAppliedRecord] = {}
    for row in rows:
        args = row.args
        deltas: dict[str, int] = {}
        for address, delta in zip(args["members"], args["moneyDeltas"], strict=True):
            deltas[address.lower()] = deltas.get(address.lower(), 0) + int(delta)
        sid = int(args["settlementId"])
        out[sid] = SettlementAppliedRecord(sid, row.tx_hash, row.block_number, deltas)
    return out


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
