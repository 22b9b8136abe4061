"""The ingest pipeline service: raw batches in, validated readings / conflicts / quarantine out.

1. `raw_batch_store` — a bridge (or the HTTP gateway) stores a batch of messages exactly as
   received in one transaction (COPY); only after it commits does the bridge ack the broker.
2. `reading_batch_ingest` — a Celery worker parses, verifies the device signatures (coincurve),
   runs VEE (`apps.meters.vee`) and writes validated rows, conflicts and quarantine in one
   transaction per batch. Idempotent: the batch row is locked and marked processed; readings are
   keyed by (meter, interval) so a re-delivered message is a duplicate, never a second row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated

import coincurve
import msgspec
import psycopg
import ujson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.meters import vee
from apps.meters.models import (
    Conflict,
    Quarantine,
    QuarantineReason,
    RawBatch,
    Source,
)
from apps.meters.partitions import partitions_ensure
from apps.meters.rollups import rollups_mark_dirty
from apps.meters.signing import (
    MAX_UINT32,
    MAX_UINT64,
    SignatureChecker,
    address_from_public_key,
    encode_fields,
    keccak256,
    recover_address,
)

logger = logging.getLogger(__name__)

INT_FIELDS = ("seq", "import_wh", "export_wh")
OPTIONAL_INT_FIELDS = ("register_import_wh", "register_export_wh", "status")


class Rejected(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


@dataclass(slots=True)
class Parsed:
    serial: str
    seq: int
    interval_start: int
    interval_seconds: int
    import_wh: int
    export_wh: int
    register_import_wh: int
    register_export_wh: int
    status: int
    signature: bytes
    raw_message_id: int | None
    topic: str
    body: bytes | msgspec.Raw  # the reading's JSON as received (quarantined if rejected later)


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


# --- message format v1 -----------------------------------------------------------------------


_START_CACHE: dict[str, int] = {}


def _parse_start(value) -> int:
    if isinstance(value, bool):
        raise Rejected(QuarantineReason.WRONG_TYPE, "start: boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        cached = _START_CACHE.get(value)  # readings of one interval share the same string
        if cached is not None:
            return cached
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise Rejected(QuarantineReason.WRONG_TYPE, f"start: {exc}") from exc
        if moment.tzinfo is None:
            raise Rejected(QuarantineReason.WRONG_TYPE, "start: no time zone")
        if len(_START_CACHE) > 10_000:
            _START_CACHE.clear()
        _START_CACHE[value] = result = int(moment.timestamp())
        return result
    raise Rejected(QuarantineReason.WRONG_TYPE, "start: expected ISO 8601 UTC or Unix seconds")


def _int(item: dict, name: str, default: int | None = None, limit: int = MAX_UINT64) -> int:
    value = item.get(name, default)
    if value is None:
        raise Rejected(QuarantineReason.MALFORMED, f"missing field {name!r}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected(QuarantineReason.WRONG_TYPE, f"{name}: expected an integer")
    if value < 0:
        raise Rejected(QuarantineReason.NEGATIVE, f"{name}: negative")
    if value > limit:
        raise Rejected(QuarantineReason.OUT_OF_RANGE, f"{name}: above {limit}")
    return value


def parse_item(item, *, topic: str, raw_message_id: int | None, body: bytes) -> Parsed:
    if not isinstance(item, dict):
        raise Rejected(QuarantineReason.MALFORMED, "a reading must be a JSON object")
    serial = item.get("serial")
    if not isinstance(serial, str) or not 0 < len(serial) <= 40:
        raise Rejected(QuarantineReason.WRONG_TYPE, "serial: expected a string of 1-40 chars")
    signature = item.get("sig")
    if signature in (None, ""):
        raise Rejected(QuarantineReason.MISSING_SIGNATURE, "no signature")
    if not isinstance(signature, str):
        raise Rejected(QuarantineReason.WRONG_TYPE, "sig: expected a hex string")
    try:
        sig = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError as exc:
        raise Rejected(QuarantineReason.BAD_SIGNATURE, "sig: not hex") from exc
    if len(sig) != 65:
        raise Rejected(QuarantineReason.BAD_SIGNATURE, "sig: expected 65 bytes")
    if "start" not in item:
        raise Rejected(QuarantineReason.MALFORMED, "missing field 'start'")
    return Parsed(
        serial=serial,
        seq=_int(item, "seq"),
        interval_start=_parse_start(item["start"]),
        interval_seconds=_int(item, "interval", 900, MAX_UINT32),
        import_wh=_int(item, "import_wh"),
        export_wh=_int(item, "export_wh"),
        register_import_wh=_int(item, "register_import_wh", 0),
        register_export_wh=_int(item, "register_export_wh", 0),
        status=_int(item, "status", 0, MAX_UINT32),
        signature=sig,
        raw_message_id=raw_message_id,
        topic=topic,
        body=body,
    )


# Fast path: message format v1 as typed structs, decoded and type-checked in C by msgspec. What
# it does not accept goes through the checks above (`parse_item`), which name the reason; the
# two accept the same readings (apps/meters/tests/test_ingest_parse.py, on generated input).
_U = Annotated[int, msgspec.Meta(ge=0)]  # upper bounds: checked below (msgspec stops at int64)


class _ReadingV1(msgspec.Struct):
    serial: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    seq: _U
    start: str | int
    import_wh: _U
    export_wh: _U
    sig: str
    interval: _U = 900
    register_import_wh: _U = 0
    register_export_wh: _U = 0
    status: _U = 0


class _GatewayV1(msgspec.Struct):
    readings: list[msgspec.Raw]


_READING = msgspec.json.Decoder(_ReadingV1)
_GATEWAY = msgspec.json.Decoder(_GatewayV1)


def _parse_fast(raw: bytes, topic: str, raw_message_id: int | None) -> Parsed | None:
    """The reading in `raw` if it passes every check of `parse_item`, else None."""
    try:
        r = _READING.decode(raw)
        signature = bytes.fromhex(r.sig.removeprefix("0x"))
    except (msgspec.DecodeError, ValueError):
        return None
    if (
        len(signature) != 65
        or max(r.seq, r.import_wh, r.export_wh, r.register_import_wh, r.register_export_wh)
        > MAX_UINT64
        or max(r.interval, r.status) > MAX_UINT32
    ):
        return None
    try:
        start = _parse_start(r.start)
    except Rejected:
        return None
    return Parsed(r.serial, r.seq, start, r.interval, r.import_wh, r.export_wh,
                  r.register_import_wh, r.register_export_wh, r.status, signature,
                  raw_message_id, topic, raw)  # fmt: skip


def parse_message(
    payload: bytes, *, topic: str, raw_message_id: int | None, max_bytes: int | None = None
) -> tuple[list[Parsed], list[tuple[str, str, bytes, str]]]:
    """Parse one message (a reading or a gateway batch `{"readings": [...]}`).

    Returns (readings, rejects) where a reject is (reason, detail, offending bytes, serial).
    `max_bytes` defaults to settings.MQTT_MAX_MESSAGE_BYTES; a caller parsing many messages
    passes it once (reading a settings attribute costs ~0.35 µs, of a ~2.6 µs parse).
    """
    if max_bytes is None:
        max_bytes = settings.MQTT_MAX_MESSAGE_BYTES
    if len(payload) > max_bytes:
        return [], [(QuarantineReason.OVERSIZED, f"{len(payload)} bytes", payload[:4096], "")]
    if b'"readings"' in payload:  # a gateway message (or a reading with odd text: slow path)
        try:
            items = _GATEWAY.decode(payload).readings
        except msgspec.DecodeError:
            items = None
        if items is not None:
            readings, rejects = [], []
            for raw in items:
                parsed = _parse_fast(raw, topic, raw_message_id)
                if parsed is not None:
                    readings.append(parsed)
                    continue
                slow, bad = _parse_slow(bytes(raw), topic, raw_message_id, gateway_item=True)
                readings.extend(slow)
                rejects.extend(bad)
            return readings, rejects
    else:
        parsed = _parse_fast(payload, topic, raw_message_id)
        if parsed is not None:
            return [parsed], []
    return _parse_slow(payload, topic, raw_message_id, gateway_item=False)


def _parse_slow(
    payload: bytes, topic: str, raw_message_id: int | None, *, gateway_item: bool
) -> tuple[list[Parsed], list[tuple[str, str, bytes, str]]]:
    """Every check with its reason (what the fast path did not accept)."""
    try:
        doc = ujson.loads(payload)  # ~2x the stdlib's speed; same errors (ValueError)
    except (ValueError, UnicodeDecodeError) as exc:
        return [], [(QuarantineReason.MALFORMED, f"invalid JSON: {exc}"[:500], payload, "")]
    if not gateway_item and isinstance(doc, dict) and "readings" in doc:
        items = doc["readings"]
        if not isinstance(items, list):
            return [], [(QuarantineReason.MALFORMED, "readings: expected a list", payload, "")]
    else:
        items = [doc]
    single = len(items) == 1 and (gateway_item or items[0] is doc)
    readings, rejects = [], []
    for item in items:
        body = payload if single else json.dumps(item, separators=(",", ":")).encode()
        try:
            readings.append(parse_item(item, topic=topic, raw_message_id=raw_message_id, body=body))
        except Rejected as exc:
            serial = item.get("serial", "") if isinstance(item, dict) else ""
            rejects.append((exc.reason, exc.detail, body, str(serial)[:64]))
    return readings, rejects


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
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                "COPY meters_rawmessage (received_at, batch_id, topic, payload) FROM STDIN "
                "(FORMAT BINARY)"  # ~3x cheaper per row than text COPY (no escaping)
            ) as copy,
        ):
            copy.set_types(["timestamptz", "int8", "text", "bytea"])
            batch_id = batch.pk
            for topic, payload in messages:
                copy.write_row((now, batch_id, topic[:300], payload))
    return batch.pk


# --- stage 2: validate and write ---------------------------------------------------------------


@dataclass(slots=True)
class _MeterState:
    id: int
    member_id: int | None
    address: str
    key: bytes | None  # 64-byte uncompressed public key (X ‖ Y)
    spec: vee.MeterSpec
    last_seq: int
    last_interval: int | None


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


def _load_meters(serials: set[str]) -> dict[str, _MeterState]:
    # One query with a binary array parameter; times come back as Unix seconds (no datetime
    # parsing per row): this runs for every batch, for thousands of meters.
    with _pg() as cursor:
        cursor.execute(
            "SELECT id, serial, member_id, address, public_key, direction, interval_seconds, "
            "capacity_w, multiplier, extract(epoch FROM active_from)::bigint, "
            "extract(epoch FROM active_to)::bigint, typical_wh, last_seq, "
            "extract(epoch FROM last_interval_start)::bigint "
            "FROM meters_meter WHERE serial = ANY(%b)",
            [list(serials)],
        )
        rows = cursor.fetchall()
    out = {}
    for (mid, serial, member_id, address, public_key, direction, interval, capacity, mult,
         active_from, active_to, typical, last_seq, last_interval) in rows:  # fmt: skip
        key = _public_key(public_key) if public_key else None
        if not address and key:
            address = address_from_public_key(key)
        out[serial] = _MeterState(
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
        )
    return out


def _pg() -> psycopg.Cursor:
    """A server-side-binding psycopg cursor on Django's connection (same transaction): arrays
    travel as typed parameters instead of being escaped into the SQL text by Django's client-side
    cursor, which costs more than the query at ingest rates."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _existing(keys: set[tuple[int, int]]) -> dict[tuple[int, int], tuple]:
    """Current readings for (meter_id, unix start) keys: one query (binary array parameters,
    Unix seconds both ways)."""
    if not keys:
        return {}
    meter_ids = [k[0] for k in keys]
    starts = [k[1] for k in keys]
    with _pg() as cursor:
        cursor.execute(
            "SELECT r.meter_id, extract(epoch FROM r.interval_start)::bigint, r.version, "
            "r.import_wh, r.export_wh, r.register_import_wh, r.register_export_wh, r.quality "
            "FROM meters_reading r JOIN unnest(%b::bigint[], %b::bigint[]) AS k(m, t) "
            "ON r.meter_id = k.m AND r.interval_start = to_timestamp(k.t) "
            "WHERE r.is_current AND r.interval_start BETWEEN to_timestamp(%b) AND to_timestamp(%b)",
            [meter_ids, starts, min(starts), max(starts)],
        )
        return {(row[0], row[1]): row[2:] for row in cursor.fetchall()}


# Rows go in through COPY into a session-local staging table, then one INSERT … SELECT … ON
# CONFLICT DO NOTHING: COPY formats rows in C, several times faster than array parameters.
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS meters_reading_stage (
    m bigint, t bigint, v smallint, sec integer, i bigint, e bigint, ri bigint, re bigint,
    st bigint, sq bigint, sig bytea, q smallint, f integer, rs varchar(200), raw bigint
) ON COMMIT DELETE ROWS
"""
_STAGE_TYPES = ["int8", "int8", "int2", "int4", "int8", "int8", "int8", "int8", "int8", "int8",
                "bytea", "int2", "int4", "text", "int8"]  # fmt: skip
_INSERT = """
INSERT INTO meters_reading (meter_id, interval_start, version, is_current, interval_seconds,
    import_wh, export_wh, register_import_wh, register_export_wh, status, seq, signature,
    quality, flags, source, reason, raw_message_id, ingested_at)
SELECT m, to_timestamp(t), v, true, sec, i, e, ri, re, st, sq, sig, q, f, %s, rs, raw,
       clock_timestamp()
  FROM meters_reading_stage
ON CONFLICT DO NOTHING
RETURNING meter_id, extract(epoch FROM interval_start)::bigint
"""


_COPY = (
    "COPY meters_reading (meter_id, interval_start, version, interval_seconds, import_wh, "
    "export_wh, register_import_wh, register_export_wh, status, seq, signature, quality, flags, "
    "reason, raw_message_id, source) FROM STDIN (FORMAT BINARY)"
)  # is_current and ingested_at (clock_timestamp()) take their column defaults
_COPY_TYPES = ["int8", "timestamptz", "int2", "int4", "int8", "int8", "int8", "int8", "int8",
               "int8", "bytea", "int2", "int4", "text", "int8", "text"]  # fmt: skip


def readings_insert(rows: list[tuple], source: str) -> set[tuple[int, int]]:
    """Insert reading rows (meter_id, unix start, version, interval_seconds, import_wh,
    export_wh, register_import_wh, register_export_wh, status, seq, signature, quality, flags,
    reason, raw_message_id) as current versions; return the (meter_id, unix start) keys that
    were written (a key that already has a current version is skipped).

    The callers have looked up the current versions in the same transaction, so a key is taken
    only if another worker wrote it meanwhile: the rows are COPYed straight into the table, and
    only if that hits a unique violation (under a savepoint) do they go through a staging table
    and INSERT … ON CONFLICT DO NOTHING, which skips the keys taken.
    """
    if not rows:
        return set()
    try:
        starts: dict[int, datetime] = {}  # a batch holds few distinct interval starts
        with transaction.atomic(), _pg() as cursor, cursor.copy(_COPY) as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                start = starts.get(row[1]) or starts.setdefault(row[1], _ts(row[1]))
                copy.write_row((row[0], start, *row[2:], source))
        return {(row[0], row[1]) for row in rows}
    except psycopg.errors.UniqueViolation:
        pass  # rolled back to the savepoint: some key was written concurrently
    with _pg() as cursor:
        cursor.execute(_STAGE)
        with cursor.copy("COPY meters_reading_stage FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_STAGE_TYPES)
            for row in rows:
                copy.write_row(row)
        cursor.execute(_INSERT, [source])
        written = set(cursor.fetchall())
        cursor.execute("DELETE FROM meters_reading_stage")  # clean even inside an outer atomic
        return written


def readings_ingest(
    *,
    readings: list[Parsed],
    rejects: list[tuple[str, str, bytes, str, int | None, str]],
    source: str,
    batch: RawBatch | None,
    now: datetime | None = None,
) -> IngestResult:
    """Verify, validate and write parsed readings (call inside a transaction)."""
    now = now or timezone.now()
    now_s = int(now.timestamp())
    result = IngestResult(batch_id=batch.pk if batch else None)
    tz = settings.COOPERATIVE_TIME_ZONE
    meters = _load_meters({r.serial for r in readings})
    quarantine: list[Quarantine] = []

    def reject(reason, detail, payload, serial, raw_id, topic):
        result.rejected += 1
        result.rejects_by_reason[str(reason)] = result.rejects_by_reason.get(str(reason), 0) + 1
        quarantine.append(
            Quarantine(
                received_at=batch.received_at if batch else now,
                batch=batch,
                raw_message_id=raw_id,
                source=source,
                topic=topic[:300],
                serial=serial[:64],
                reason=reason,
                detail=str(detail)[:500],
                payload=payload,
            )
        )

    for reason, detail, payload, serial, raw_id, topic in rejects:
        reject(reason, detail, payload, serial, raw_id, topic)

    def body(p: Parsed) -> bytes:
        return bytes(p.body)  # a gateway item is a view into its message

    # Signatures (libsecp256k1) and registry checks.
    checker = SignatureChecker()
    verified: list[tuple[_MeterState, Parsed]] = []
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
        verified.append((meter, p))

    verified.sort(key=lambda mp: (mp[0].id, mp[1].interval_start, mp[1].seq))
    keys = set()
    for meter, p in verified:
        keys.add((meter.id, p.interval_start))
        keys.add((meter.id, p.interval_start - p.interval_seconds))
    if verified:
        starts = [p.interval_start for _, p in verified]
        partitions_ensure(
            start=_ts(min(starts) - 900), end=_ts(max(starts)), tables=["meters_reading"]
        )
    existing = _existing(keys)

    inserts: list[tuple] = []
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
            version, imp, exp, ri, re_, quality = current
            kind = vee.compare_existing((imp, exp, ri, re_), quality, cand)
            if kind == "duplicate":
                result.duplicates += 1
                continue
            if kind == "conflict":
                conflicts.append(_conflict(meter.id, p, version, now))
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
        prev_row = existing.get((meter.id, p.interval_start - p.interval_seconds))
        prev = None
        if prev_row is not None:
            prev = vee.Previous(p.interval_start - p.interval_seconds, prev_row[1], prev_row[2],
                                prev_row[3], prev_row[4])  # fmt: skip
        verdict = vee.validate(cand, meter.spec, prev, now=now_s, tz=tz)
        if verdict.reject:
            reject(verdict.reject, verdict.detail, body(p), p.serial, p.raw_message_id, p.topic)
            continue
        version, reason, flags = 1, "", verdict.flags
        if current is not None:  # a late real value replaces an estimate
            version = current[0] + 1
            reason = "actual reading replaces estimate"
            flags |= vee.Flag.REPLACES_ESTIMATE
            replaced.append((meter.id, p.interval_start, current[0]))
        seen_in_batch[key] = p
        # the value becomes the "previous" of the next interval in this batch
        existing[key] = (version, p.import_wh, p.export_wh, p.register_import_wh,
                         p.register_export_wh, verdict.quality)  # fmt: skip
        inserts.append((meter.id, p.interval_start, version, p.interval_seconds,
                        p.import_wh, p.export_wh, p.register_import_wh, p.register_export_wh,
                        p.status, p.seq, p.signature, verdict.quality, int(flags), reason,
                        p.raw_message_id))  # fmt: skip
        if meter.last_interval is None or p.interval_start > meter.last_interval:
            meter.last_seq, meter.last_interval = p.seq, p.interval_start
            state_updates[meter.id] = (p.seq, p.interval_start)
        result.meters.add(meter.id)

    if replaced:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE meters_reading r SET is_current = false "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::smallint[]) AS k(m, t, v) "
                "WHERE r.meter_id = k.m AND r.interval_start = to_timestamp(k.t) "
                "AND r.version = k.v AND r.is_current",
                [[r[0] for r in replaced], [r[1] for r in replaced], [r[2] for r in replaced]],
            )
        result.replaced_estimates = len(replaced)
    written = readings_insert(inserts, source)
    result.accepted = len(written)
    lost = [row for row in inserts if (row[0], row[1]) not in written]
    if lost:  # another worker wrote the same interval concurrently: compare with its value
        again = _existing({(row[0], row[1]) for row in lost})
        for row in lost:
            current = again.get((row[0], row[1]))
            if current is not None and tuple(current[1:5]) == tuple(row[4:8]):
                result.duplicates += 1
            else:
                conflicts.append(
                    Conflict(
                        meter_id=row[0],
                        interval_start=_ts(row[1]),
                        existing_version=current[0] if current else 1,
                        interval_seconds=row[3],
                        import_wh=row[4],
                        export_wh=row[5],
                        register_import_wh=row[6],
                        register_export_wh=row[7],
                        device_status=row[8],
                        seq=row[9],
                        signature=row[10],
                        raw_message_id=row[14],
                        detected_at=now,
                    )  # fmt: skip
                )
    if conflicts:
        Conflict.objects.bulk_create(conflicts)
        result.conflicts = len(conflicts)
    if quarantine:
        Quarantine.objects.bulk_create(quarantine)
    if inserts:
        rollups_mark_dirty(starts=[row[1] for row in inserts])
    transaction.on_commit(lambda: _after_commit(state_updates, result, now))
    return result


def _conflict(meter_id: int, p: Parsed, existing_version: int, now: datetime) -> Conflict:
    return Conflict(
        meter_id=meter_id,
        interval_start=_ts(p.interval_start),
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
        with transaction.atomic(), _pg() as cursor:
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


def reading_batch_ingest(*, batch_id: int) -> IngestResult:
    """Process one stored raw batch (idempotent: a processed batch is skipped)."""
    with transaction.atomic():
        batch = RawBatch.objects.select_for_update().get(pk=batch_id)
        if batch.status == RawBatch.Status.PROCESSED:
            return IngestResult(batch_id=batch_id, already_processed=True)
        readings: list[Parsed] = []
        rejects = []
        max_bytes = settings.MQTT_MAX_MESSAGE_BYTES
        with _pg() as cursor:
            cursor.execute(
                "SELECT id, topic, payload FROM meters_rawmessage "
                "WHERE received_at = %s AND batch_id = %s ORDER BY id",
                [batch.received_at, batch.pk],
                binary=True,  # payloads as bytes, no hex decoding
            )
            for raw_id, topic, payload in cursor.fetchall():
                parsed, bad = parse_message(
                    payload, topic=topic, raw_message_id=raw_id, max_bytes=max_bytes
                )
                readings.extend(parsed)
                if bad:
                    rejects.extend((*b, raw_id, topic) for b in bad)
        result = readings_ingest(
            readings=readings, rejects=rejects, source=batch.source, batch=batch
        )
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
