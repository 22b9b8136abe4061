"""The ingest pipeline: raw batches in, validated readings / conflicts / quarantine out.

1. `raw_batch_store` — a bridge (or the HTTP gateway) stores a batch of messages exactly as
   received in one transaction (COPY); only after it commits does the bridge ack the broker.
2. `reading_batch_ingest` — a Celery worker parses the batch's messages (`wire`), then
   `readings_ingest` verifies the device signatures (coincurve), runs VEE (`apps.meters.vee`)
   and writes validated rows (`store`), conflicts and quarantine in one transaction per batch.
   Idempotent: the batch row is locked and marked processed; readings are keyed by
   (meter, interval) so a re-delivered message is a duplicate, never a second row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

import coincurve
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from apps.meters import vee
from apps.meters.lock_objects import raw_batch_lock
from apps.meters.models import (
    Conflict,
    Quarantine,
    QuarantineReason,
    RawBatch,
    Source,
)
from apps.meters.readings.partitions import partitions_ensure
from apps.meters.readings.rollups import rollups_mark_dirty
from apps.meters.readings.store import (
    ReadingRow,
    current_readings,
    from_unix,
    pg_cursor,
    raw_messages_of_batch,
    raw_messages_write,
    readings_insert,
    readings_supersede,
)
from apps.meters.readings.wire import Parsed, parse_message, text_storable
from apps.meters.signing import (
    SignatureChecker,
    address_from_public_key,
    encode_fields,
    keccak256,
    recover_address,
)

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestResult:
    batch_id: int | None = None
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    replaced_estimates: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    meters: set[int] = field(default_factory=set)
    already_processed: bool = False


class QuarantineItem(NamedTuple):
    """A reject with where it came from (what `readings_ingest` quarantines)."""

    reason: str
    detail: str
    payload: bytes
    serial: str
    raw_message_id: int | None
    topic: str


# --- stage 1: store raw ------------------------------------------------------------------------


def raw_batch_store(
    *, messages: Sequence[tuple[str, bytes]], source: str = Source.MQTT, bridge: str = ""
) -> int:
    """Store messages exactly as received in one transaction (COPY); return the batch id."""
    now = timezone.now()
    with transaction.atomic():
        partitions_ensure(start=now, end=now, tables=["meters_rawmessage"])
        batch = RawBatch.objects.create(
            received_at=now, source=source, bridge=bridge[:100], message_count=len(messages)
        )
        raw_messages_write(batch_id=batch.pk, received_at=now, messages=messages)
    return batch.pk


# --- stage 2: validate and write ---------------------------------------------------------------


@dataclass(slots=True)
class MeterState:
    """What the pipeline needs of a meter: identity, key, VEE spec and sequence position."""

    id: int
    member_id: int | None
    address: str
    key: bytes | None  # 64-byte uncompressed public key (X ‖ Y)
    spec: vee.MeterSpec
    last_seq: int
    last_interval: int | None
    # A meter installed by an exchange: the registers it started from, as the "previous" reading
    # of its first interval (VEE checks its first register against them; no false spike or
    # register mismatch because the register restarts on a new device).
    exchange_previous: vee.Previous | None = None


_KEY_CACHE: dict[str, bytes | None] = {}


def _public_key(public_key_hex: str) -> bytes | None:
    """64-byte X ‖ Y of a stored public key (parsed once per process)."""
    if public_key_hex not in _KEY_CACHE:
        try:
            raw = bytes.fromhex(public_key_hex.removeprefix("0x"))
            _KEY_CACHE[public_key_hex] = coincurve.PublicKey(raw).format(compressed=False)[1:]
        except ValueError:
            _KEY_CACHE[public_key_hex] = None
    return _KEY_CACHE[public_key_hex]


def _load_meters(serials: set[str]) -> dict[str, MeterState]:
    # One query with a binary array parameter; times come back as Unix seconds (no datetime
    # parsing per row): this runs for every batch, for thousands of meters.
    with pg_cursor() as cursor:
        cursor.execute(
            "SELECT m.id, m.serial, m.member_id, m.address, m.public_key, m.direction, "
            "m.interval_seconds, m.capacity_w, m.multiplier, "
            "extract(epoch FROM m.active_from)::bigint, extract(epoch FROM m.active_to)::bigint, "
            "m.typical_wh, m.last_seq, extract(epoch FROM m.last_interval_start)::bigint, "
            "extract(epoch FROM x.interval_start)::bigint, x.new_initial_register_wh, "
            "x.new_initial_register_export_wh "
            "FROM meters_meter m LEFT JOIN meters_meterexchange x ON x.new_meter_id = m.id "
            "WHERE m.serial = ANY(%b)",
            [list(serials)],
        )
        rows = cursor.fetchall()
    out = {}
    for (mid, serial, member_id, address, public_key, direction, interval, capacity, mult,
         active_from, active_to, typical, last_seq, last_interval, exchange_start,
         initial_import, initial_export) in rows:  # fmt: skip
        key = _public_key(public_key) if public_key else None
        if not address and key:
            address = address_from_public_key(key)
        exchange_previous = None
        if exchange_start is not None:
            exchange_previous = vee.Previous(
                exchange_start - interval, 0, 0, initial_import, initial_export
            )
        out[serial] = MeterState(
            id=mid,
            member_id=member_id,
            address=address,
            key=key,
            spec=vee.MeterSpec(
                direction=direction,
                interval_seconds=interval,
                capacity_w=capacity,
                multiplier=mult,
                active_from=active_from,
                active_to=active_to,
                typical_wh=typical,
            ),
            last_seq=last_seq,
            last_interval=last_interval,
            exchange_previous=exchange_previous,
        )
    return out


def readings_ingest(
    *,
    readings: list[Parsed],
    rejects: list[QuarantineItem],
    source: str,
    batch: RawBatch | None,
    now: datetime | None = None,
) -> IngestResult:
    """Verify, validate and write parsed readings (call inside a transaction)."""
    now = now or timezone.now()
    now_s = int(now.timestamp())
    result = IngestResult(batch_id=batch.pk if batch else None)
    tz = settings.COOPERATIVE_TIME_ZONE
    # The serial a device's topic names (…/meters/<serial>/readings): when it is a registered
    # meter, every reading of the message must be signed for that serial (`topic_mismatch`). A
    # topic naming no meter is a data concentrator's (its readings name their meters; the
    # production broker's ACL gives accounts to meters only). HTTP topics name no device.
    topic_serial: dict[str, str] = {}
    if source in (Source.MQTT, Source.REPROCESS):
        # only topics that do not end in the reading's own serial need a closer look
        for topic in {r.topic for r in readings if not r.topic.endswith(f"/{r.serial}/readings")}:
            parts = topic.rsplit("/", 3)
            if len(parts) == 4 and parts[1] == "meters" and parts[3] == "readings":
                topic_serial[topic] = parts[2]
    meters = _load_meters({r.serial for r in readings} | set(topic_serial.values()))
    topic_owner = {t: s for t, s in topic_serial.items() if s in meters}
    quarantine: list[Quarantine] = []

    def reject(reason: str, detail: str, payload: bytes, serial: str, raw_id: int | None,
               topic: str) -> None:  # fmt: skip
        result.rejected += 1
        result.rejects_by_reason[str(reason)] = result.rejects_by_reason.get(str(reason), 0) + 1
        quarantine.append(
            Quarantine(
                received_at=batch.received_at if batch else now,
                batch=batch,
                raw_message_id=raw_id,
                source=source,
                topic=pg_text(topic)[:300],
                serial=pg_text(serial)[:64],
                reason=reason,
                detail=pg_text(str(detail))[:500],
                payload=payload,
            )
        )

    for reason, detail, payload, serial, raw_id, topic in rejects:
        reject(reason, detail, payload, serial, raw_id, topic)

    def body(p: Parsed) -> bytes:
        return bytes(p.body)  # a gateway item is a view into its message

    # Signatures (libsecp256k1) and registry checks.
    checker = SignatureChecker()
    verified: list[tuple[MeterState, Parsed]] = []
    # Up to a day ahead a reading is VEE's to judge (`future` beyond the clock drift tolerance,
    # partitions exist that far ahead); further ahead it is out of the meter's window.
    latest_start = now_s + 86_400
    before_install = settings.METER_READING_MAX_DAYS_BEFORE_INSTALL * 86_400
    for p in readings:
        meter = meters.get(p.serial)
        if meter is None:
            reject(QuarantineReason.UNKNOWN_METER, p.serial, body(p), p.serial,
                   p.raw_message_id, p.topic)  # fmt: skip
            continue
        try:
            digest = keccak256(encode_fields(p.serial, p.seq, p.interval_start,
                                             p.interval_seconds, p.import_wh, p.export_wh,
                                             p.register_import_wh, p.register_export_wh,
                                             p.status))  # fmt: skip
            ok = meter.key is not None and checker.signed_by(digest, p.signature, meter.key)
        except ValueError as exc:
            reject(QuarantineReason.BAD_SIGNATURE, str(exc), body(p), p.serial,
                   p.raw_message_id, p.topic)  # fmt: skip
            continue
        if not ok:
            signed_by = recover_address(digest, p.signature)
            reject(QuarantineReason.BAD_SIGNATURE, f"signed by {signed_by}", body(p), p.serial,
                   p.raw_message_id, p.topic)  # fmt: skip
            continue
        owner = topic_owner.get(p.topic) if topic_owner else None
        if owner is not None and owner != p.serial:
            reject(QuarantineReason.TOPIC_MISMATCH,
                   f"signed for {p.serial} but published on {owner}'s topic", body(p), p.serial,
                   p.raw_message_id, p.topic)  # fmt: skip
            continue
        # The meter's time window, checked before partitions are created for the dates.
        earliest = (meter.spec.active_from or now_s) - before_install
        if not earliest <= p.interval_start <= latest_start:
            reject(QuarantineReason.START_OUT_OF_RANGE,
                   f"start {from_unix(p.interval_start).isoformat()} outside "
                   f"{from_unix(earliest).isoformat()}..{from_unix(latest_start).isoformat()}",
                   body(p), p.serial, p.raw_message_id, p.topic)  # fmt: skip
            continue
        verified.append((meter, p))

    verified.sort(key=lambda mp: (mp[0].id, mp[1].interval_start, mp[1].seq))
    keys: set[tuple[int, int]] = set()
    for meter, p in verified:
        keys.add((meter.id, p.interval_start))
        keys.add((meter.id, p.interval_start - p.interval_seconds))
    if verified:
        starts = [p.interval_start for _, p in verified]
        partitions_ensure(
            start=from_unix(min(starts) - 900),
            end=from_unix(max(starts)),
            tables=["meters_reading"],
        )
    existing = current_readings(keys)

    inserts: list[ReadingRow] = []
    replaced: list[tuple[int, int, int]] = []  # (meter, start, old version)
    conflicts: list[Conflict] = []
    seen_in_batch: dict[tuple[int, int], Parsed] = {}
    state_updates: dict[int, tuple[int, int]] = {}
    for meter, p in verified:
        key = (meter.id, p.interval_start)
        cand = vee.Candidate(p.interval_start, p.interval_seconds, p.import_wh, p.export_wh,
                             p.register_import_wh, p.register_export_wh)  # fmt: skip
        if key in seen_in_batch:
            prior = seen_in_batch[key]
            same = (prior.import_wh, prior.export_wh, prior.register_import_wh,
                    prior.register_export_wh) == (p.import_wh, p.export_wh,
                    p.register_import_wh, p.register_export_wh)  # fmt: skip
            if same:
                result.duplicates += 1
            else:
                conflicts.append(_conflict(meter.id, p, 1, now))
            continue
        current = existing.get(key)
        if current is not None:
            kind = vee.compare_existing(current[1:5], current.quality, cand)
            if kind == "duplicate":
                result.duplicates += 1
                continue
            if kind == "conflict":
                conflicts.append(_conflict(meter.id, p, current.version, now))
                continue
        # Sequence numbers: per meter monotonically increasing with the interval.
        if meter.last_interval is not None:
            if p.seq == meter.last_seq and p.interval_start != meter.last_interval:
                reject(QuarantineReason.REPLAYED_SEQ, f"seq {p.seq} already used",
                       body(p), p.serial, p.raw_message_id, p.topic)  # fmt: skip
                continue
            if (p.seq > meter.last_seq) != (p.interval_start > meter.last_interval):
                reject(QuarantineReason.REORDERED_SEQ,
                       f"seq {p.seq} vs last {meter.last_seq} out of interval order",
                       body(p), p.serial, p.raw_message_id, p.topic)  # fmt: skip
                continue
        prev_key = (meter.id, p.interval_start - p.interval_seconds)
        # a value accepted earlier in this batch is the "previous" of the next interval
        prev_row = seen_in_batch.get(prev_key) or existing.get(prev_key)
        # ... and its seq is lower (a late reading filling a gap is checked against it too)
        if prev_row is not None and prev_row.seq is not None and p.seq <= prev_row.seq:
            reason = (QuarantineReason.REPLAYED_SEQ if p.seq == prev_row.seq
                      else QuarantineReason.REORDERED_SEQ)  # fmt: skip
            reject(reason, f"seq {p.seq} not above {prev_row.seq} of the previous interval",
                   body(p), p.serial, p.raw_message_id, p.topic)  # fmt: skip
            continue
        prev = None
        exchanged = False
        if prev_row is not None:
            prev = vee.Previous(prev_key[1], prev_row.import_wh,
                                prev_row.export_wh, prev_row.register_import_wh,
                                prev_row.register_export_wh)  # fmt: skip
        elif (
            meter.exchange_previous is not None
            and p.interval_start == meter.exchange_previous.interval_start + p.interval_seconds
        ):  # the new meter's first interval after an exchange: its initial registers
            prev, exchanged = meter.exchange_previous, True
        verdict = vee.validate(cand, meter.spec, prev, now=now_s, tz=tz)
        if verdict.reject:
            reject(verdict.reject, verdict.detail, body(p), p.serial, p.raw_message_id, p.topic)
            continue
        version, reason, flags = 1, "", verdict.flags
        if exchanged:
            flags |= vee.Flag.METER_EXCHANGE
        if current is not None:  # a late real value replaces an estimate
            version = current.version + 1
            reason = "actual reading replaces estimate"
            flags |= vee.Flag.REPLACES_ESTIMATE
            replaced.append((meter.id, p.interval_start, current.version))
        seen_in_batch[key] = p
        inserts.append(ReadingRow(meter.id, p.interval_start, version, p.interval_seconds,
                                  p.import_wh, p.export_wh, p.register_import_wh,
                                  p.register_export_wh, p.status, p.seq, p.signature,
                                  verdict.quality, int(flags), reason,
                                  p.raw_message_id))  # fmt: skip
        if meter.last_interval is None or p.interval_start > meter.last_interval:
            meter.last_seq, meter.last_interval = p.seq, p.interval_start
            state_updates[meter.id] = (p.seq, p.interval_start)
        result.meters.add(meter.id)

    if replaced:
        readings_supersede(replaced)
        result.replaced_estimates = len(replaced)
    written = readings_insert(inserts, source)
    result.accepted = len(written)
    lost = [row for row in inserts if (row.meter_id, row.interval_start) not in written]
    if lost:  # another worker wrote the same interval concurrently: compare with its value
        again = current_readings({(row.meter_id, row.interval_start) for row in lost})
        for row in lost:
            current = again.get((row.meter_id, row.interval_start))
            if current is not None and tuple(current[1:5]) == tuple(row[4:8]):
                result.duplicates += 1
            else:
                conflicts.append(
                    Conflict(
                        meter_id=row.meter_id,
                        interval_start=from_unix(row.interval_start),
                        existing_version=current.version if current else 1,
                        interval_seconds=row.interval_seconds,
                        import_wh=row.import_wh,
                        export_wh=row.export_wh,
                        register_import_wh=row.register_import_wh,
                        register_export_wh=row.register_export_wh,
                        device_status=row.status,
                        seq=row.seq,
                        signature=row.signature,
                        raw_message_id=row.raw_message_id,
                        detected_at=now,
                    )  # fmt: skip
                )
    if conflicts:
        Conflict.objects.bulk_create(conflicts)
        result.conflicts = len(conflicts)
    if quarantine:
        Quarantine.objects.bulk_create(quarantine)
    if inserts:
        rollups_mark_dirty(
            meter_ids={row.meter_id for row in inserts},
            starts=[row.interval_start for row in inserts],
        )
    transaction.on_commit(lambda: _after_commit(state_updates, result, now))
    return result


def pg_text(text: str) -> str:
    """`text` as PostgreSQL can store it: NUL and lone surrogates written as escapes."""
    if text_storable(text):
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _conflict(meter_id: int, p: Parsed, existing_version: int, now: datetime) -> Conflict:
    return Conflict(
        meter_id=meter_id,
        interval_start=from_unix(p.interval_start),
        existing_version=existing_version,
        interval_seconds=p.interval_seconds,
        import_wh=p.import_wh,
        export_wh=p.export_wh,
        register_import_wh=p.register_import_wh,
        register_export_wh=p.register_export_wh,
        device_status=p.status,
        seq=p.seq,
        signature=p.signature,
        raw_message_id=p.raw_message_id,
        detected_at=now,
    )


def _after_commit(state_updates: dict[int, tuple[int, int]], result: IngestResult, now) -> None:
    """Advance last_seq / last_seen in a short transaction of its own (rows locked in id order,
    so concurrent workers never deadlock and never serialise the main write), then push live."""
    if state_updates:
        ids = sorted(state_updates)
        with transaction.atomic(), pg_cursor() as cursor:
            cursor.execute(
                "SELECT id FROM meters_meter WHERE id = ANY(%b) ORDER BY id FOR UPDATE", [ids]
            )
            cursor.execute(
                "UPDATE meters_meter m SET last_seen = GREATEST(m.last_seen, %s), "
                "last_seq = CASE WHEN m.last_interval_start IS NULL OR k.t > m.last_interval_start "
                "  THEN k.s ELSE m.last_seq END, "
                "last_interval_start = GREATEST(m.last_interval_start, k.t) "
                "FROM (SELECT id, s, to_timestamp(t) AS t "
                "      FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[]) AS u(id, s, t)) k "
                "WHERE m.id = k.id",
                [
                    now,
                    ids,
                    [state_updates[i][0] for i in ids],
                    [state_updates[i][1] for i in ids],
                ],  # fmt: skip
            )
    if result.meters:
        from apps.meters.live import live_readings_push

        try:
            live_readings_push(meter_ids=sorted(result.meters))
        except Exception:  # noqa: BLE001 - live push is best effort; data is committed
            logger.exception("live push failed")


def _merge(total: IngestResult, part: IngestResult) -> None:
    total.accepted += part.accepted
    total.duplicates += part.duplicates
    total.conflicts += part.conflicts
    total.rejected += part.rejected
    total.replaced_estimates += part.replaced_estimates
    for reason, count in part.rejects_by_reason.items():
        total.rejects_by_reason[reason] = total.rejects_by_reason.get(reason, 0) + count
    total.meters |= part.meters


def _refused(item: Parsed | QuarantineItem, exc: Exception) -> QuarantineItem:
    """The quarantine row of one item the database refused, with the database's reason."""
    detail = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    if isinstance(item, Parsed):
        return QuarantineItem(QuarantineReason.DB_REFUSED, detail, bytes(item.body),
                              item.serial, item.raw_message_id, item.topic)  # fmt: skip
    return QuarantineItem(QuarantineReason.DB_REFUSED, f"{detail} (was {item.reason})",
                          item.payload, "", item.raw_message_id, "")  # fmt: skip


def _ingest_isolated(
    items: list[Parsed | QuarantineItem], *, source: str, batch: RawBatch
) -> IngestResult:
    """`readings_ingest` of `items` in a savepoint; if the database refuses them, the halves are
    tried on their own, down to the single item, which is quarantined with the database's
    reason — everything else commits."""
    try:
        with transaction.atomic():
            return readings_ingest(
                readings=[i for i in items if isinstance(i, Parsed)],
                rejects=[i for i in items if isinstance(i, QuarantineItem)],
                source=source,
                batch=batch,
            )
    except (DatabaseError, ValueError, OverflowError) as exc:
        if len(items) > 1:
            logger.warning("batch %s: %s items refused, bisecting: %s", batch.pk, len(items), exc)
            total = IngestResult(batch_id=batch.pk)
            middle = len(items) // 2
            for half in (items[:middle], items[middle:]):
                _merge(total, _ingest_isolated(half, source=source, batch=batch))
            return total
        logger.warning("batch %s: item refused: %s", batch.pk, exc)
        if isinstance(items[0], QuarantineItem) and items[0].reason == QuarantineReason.DB_REFUSED:
            raise  # even the bare quarantine row is refused: nothing smaller to try
        return _ingest_isolated([_refused(items[0], exc)], source=source, batch=batch)


def _serial_rate_limit(readings: list[Parsed]) -> tuple[list[Parsed], list[QuarantineItem]]:
    """HTTP gateways: at most METER_GATEWAY_READINGS_PER_SERIAL_PER_MINUTE readings per serial
    and minute over every gateway (Redis counters, counted before any signature work); the
    excess is quarantined `rate_limited` (kept; staff can re-process it). Registered or not,
    every serial is counted alike, so the answer does not tell which serials exist. Fails open
    if the cache is unreachable (the device signatures still apply)."""
    import hashlib
    import time

    from django.core.cache import cache

    limit = settings.METER_GATEWAY_READINGS_PER_SERIAL_PER_MINUTE
    wanted: dict[str, int] = {}
    for p in readings:
        wanted[p.serial] = wanted.get(p.serial, 0) + 1
    minute = int(time.time() // 60)
    allowed: dict[str, int] = {}
    try:
        for serial, n in wanted.items():
            digest = hashlib.sha256(serial.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            key = f"meters:serial-rate:{digest}:{minute}"
            cache.add(key, 0, timeout=120)
            total = cache.incr(key, n)
            allowed[serial] = max(0, min(n, limit - (total - n)))
    except Exception:  # noqa: BLE001 - a cache outage must not stop ingest
        logger.warning("per-serial rate limit unavailable")
        return readings, []
    kept: list[Parsed] = []
    limited: list[QuarantineItem] = []
    for p in readings:
        if allowed[p.serial] > 0:
            allowed[p.serial] -= 1
            kept.append(p)
        else:
            detail = f"over {limit} readings of {p.serial} a minute"
            limited.append(QuarantineItem(QuarantineReason.RATE_LIMITED, detail, bytes(p.body),
                                          p.serial, p.raw_message_id, p.topic))  # fmt: skip
    return kept, limited


def _batch_attempt(batch_id: int) -> int:
    """Count a processing attempt in a transaction of its own (it stays counted if the attempt
    dies); the number of attempts, or 0 if the batch is already processed."""
    with transaction.atomic():
        batch = raw_batch_lock(batch_id)
        if batch.status == RawBatch.Status.PROCESSED:
            return 0
        batch.attempts += 1
        batch.save(update_fields=["attempts"])
        return batch.attempts


def reading_batch_ingest(*, batch_id: int) -> IngestResult:
    """Process one stored raw batch (idempotent: a processed batch is skipped).

    Nothing in one message keeps the others from being ingested: values are range-checked before
    any database work, a refused piece is bisected down to the item the database refuses, and a
    batch that failed METER_INGEST_MAX_ATTEMPTS attempts is quarantined whole (`batch_stuck`)."""
    attempts = _batch_attempt(batch_id)
    with transaction.atomic():
        batch = raw_batch_lock(batch_id)
        if batch.status == RawBatch.Status.PROCESSED:
            return IngestResult(batch_id=batch_id, already_processed=True)
        readings: list[Parsed] = []
        rejects: list[QuarantineItem] = []
        max_bytes = settings.MQTT_MAX_MESSAGE_BYTES
        stuck = attempts > settings.METER_INGEST_MAX_ATTEMPTS
        for raw_id, topic, payload in raw_messages_of_batch(
            batch_id=batch.pk, received_at=batch.received_at
        ):
            if stuck:
                rejects.append(QuarantineItem(QuarantineReason.BATCH_STUCK,
                                              f"{attempts - 1} processing attempts failed",
                                              payload, "", raw_id, topic))  # fmt: skip
                continue
            parsed, bad = parse_message(
                payload, topic=topic, raw_message_id=raw_id, max_bytes=max_bytes
            )
            readings.extend(parsed)
            if bad:
                rejects.extend(QuarantineItem(*b, raw_id, topic) for b in bad)
        if batch.source == Source.HTTP and readings:
            readings, limited = _serial_rate_limit(readings)
            rejects.extend(limited)
        result = _ingest_isolated([*readings, *rejects], source=batch.source, batch=batch)
        batch.processed_at = timezone.now()
        batch.accepted = result.accepted
        batch.duplicates = result.duplicates
        batch.conflicts = result.conflicts
        batch.rejected = result.rejected
        batch.transition_to(
            RawBatch.Status.PROCESSED,
            actor=None,
            update_fields=["processed_at", "accepted", "duplicates", "conflicts", "rejected"],
        )
    return result


def pending_batches(
    *, older_than: timedelta = timedelta(seconds=30), bridge: str | None = None
) -> list[int]:
    """Batches stored but not processed (e.g. the bridge died before handing them over): the
    sweeper re-enqueues them; a restarting bridge hands over its own (`bridge`) at once."""
    cutoff = timezone.now() - older_than
    pending = RawBatch.objects.filter(status=RawBatch.Status.PENDING, received_at__lt=cutoff)
    if bridge is not None:
        pending = pending.filter(bridge=bridge[:100])
    return list(pending.order_by("received_at").values_list("pk", flat=True)[:1000])
