"""Message format v1 on the wire: one reading, or a gateway batch `{"readings": [...]}`.

`parse_message` turns the bytes of one message into `Parsed` readings and `Reject`s (reason,
detail, the offending bytes kept exactly as received, serial). A msgspec fast path decodes and
type-checks a well-formed reading in C; whatever it does not accept goes through `parse_slow`,
which runs every check with its reason. The two accept the same readings
(apps/meters/tests/test_ingest_parse.py, on generated input). Pure parsing: no database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, NamedTuple

import msgspec
from django.conf import settings

from apps.meters.models import QuarantineReason
from apps.meters.signing import MAX_UINT32, SECP256K1_HALF_N, signature_problem


class Rejected(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


class Reject(NamedTuple):
    """A reading (or message) that is not accepted, with why; quarantined by the pipeline."""

    reason: str  # a QuarantineReason value
    detail: str
    payload: bytes  # the offending bytes exactly as received
    serial: str  # "" when the message has no readable serial


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


# What PostgreSQL can store (checked here, before any database work, so that no value a device
# signs can make the database refuse a whole batch): bigint for seq, energy and registers,
# integer for the interval length; a start between 1970 and the end of year 9999 (the meter's
# own window — install date to now — is checked by the pipeline before partitions are touched).
PG_BIGINT_MAX = 2**63 - 1
PG_INT_MAX = 2**31 - 1
START_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z

_START_CACHE: dict[str, int] = {}


def text_storable(text: str) -> bool:
    """Whether PostgreSQL can store `text` (no NUL, no lone surrogate)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _start_in_range(value: int) -> int:
    if not 0 <= value <= START_MAX:
        raise Rejected(
            QuarantineReason.START_OUT_OF_RANGE, f"start: {value} outside 1970-01-01..9999-12-31"
        )
    return value


def _parse_start(value) -> int:
    if isinstance(value, bool):
        raise Rejected(QuarantineReason.WRONG_TYPE, "start: boolean")
    if isinstance(value, int):
        return _start_in_range(value)
    if isinstance(value, str):
        cached = _START_CACHE.get(value)  # readings of one interval share the same string
        if cached is not None:
            return cached
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            year = value.lstrip("+-").partition("-")[0]
            if value[:1] in "+-" or (len(year) > 4 and year.isdigit()):  # year < 0 or > 9999
                raise Rejected(
                    QuarantineReason.START_OUT_OF_RANGE, f"start: {value[:40]!r} outside 1970..9999"
                ) from exc
            raise Rejected(QuarantineReason.WRONG_TYPE, f"start: {exc}") from exc
        if moment.tzinfo is None:
            raise Rejected(QuarantineReason.WRONG_TYPE, "start: no time zone")
        if moment.microsecond:
            raise Rejected(
                QuarantineReason.MISALIGNED, f"start: {value!r} has a fraction of a second"
            )
        if len(_START_CACHE) > 10_000:
            _START_CACHE.clear()
        result = _start_in_range(int(moment.timestamp()))
        _START_CACHE[value] = result
        return result
    raise Rejected(QuarantineReason.WRONG_TYPE, "start: expected ISO 8601 UTC or Unix seconds")


def _int(item: dict, name: str, default: int | None = None, limit: int = PG_BIGINT_MAX) -> int:
    value = item.get(name, default)
    if value is None:
        raise Rejected(QuarantineReason.MALFORMED, f"missing field {name!r}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected(QuarantineReason.WRONG_TYPE, f"{name}: expected an integer")
    if value < 0:
        raise Rejected(QuarantineReason.NEGATIVE, f"{name}: negative")
    if value > limit:
        raise Rejected(QuarantineReason.OUT_OF_RANGE, f"{name}: {value} above {limit}")
    return value


def parse_item(item, *, topic: str, raw_message_id: int | None, body: bytes) -> Parsed:
    if not isinstance(item, dict):
        raise Rejected(QuarantineReason.MALFORMED, "a reading must be a JSON object")
    serial = item.get("serial")
    if not isinstance(serial, str) or not 0 < len(serial) <= 40:
        raise Rejected(QuarantineReason.WRONG_TYPE, "serial: expected a string of 1-40 chars")
    if not text_storable(serial):
        raise Rejected(QuarantineReason.BAD_TEXT, f"serial: {serial!r} has a NUL or lone surrogate")
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
    problem = signature_problem(sig)
    if problem:
        raise Rejected(QuarantineReason.NONCANONICAL_SIGNATURE, problem)
    if "start" not in item:
        raise Rejected(QuarantineReason.MALFORMED, "missing field 'start'")
    if "readings" in item:
        raise Rejected(QuarantineReason.MALFORMED, "a reading carries an unexpected 'readings' key")
    version = item.get("v")
    if type(version) is not int or version != 1:
        raise Rejected(QuarantineReason.BAD_VERSION, f"v: {version!r}, expected the integer 1")
    return Parsed(
        serial=serial,
        seq=_int(item, "seq"),
        interval_start=_parse_start(item["start"]),
        interval_seconds=_int(item, "interval", 900, PG_INT_MAX),
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
    v: Literal[1]
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
    readings: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET  # present: not a reading


class _GatewayV1(msgspec.Struct, forbid_unknown_fields=True):
    v: Literal[1]
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
        r.readings is not msgspec.UNSET
        or len(signature) != 65
        or signature[64] not in (27, 28)
        or signature[32:64] > SECP256K1_HALF_N
        or max(r.seq, r.import_wh, r.export_wh, r.register_import_wh, r.register_export_wh)
        > PG_BIGINT_MAX
        or r.interval > PG_INT_MAX
        or r.status > MAX_UINT32
        or not text_storable(r.serial)
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
) -> tuple[list[Parsed], list[Reject]]:
    """Parse one message (a reading or a gateway batch `{"readings": [...]}`).

    Returns (readings, rejects) where a reject is (reason, detail, offending bytes, serial).
    `max_bytes` defaults to settings.MQTT_MAX_MESSAGE_BYTES; a caller parsing many messages
    passes it once (reading a settings attribute costs ~0.35 µs, of a ~2.6 µs parse).
    """
    if max_bytes is None:
        max_bytes = settings.MQTT_MAX_MESSAGE_BYTES
    if len(payload) > max_bytes:
        return [], [Reject(QuarantineReason.OVERSIZED, f"{len(payload)} bytes", payload[:4096], "")]
    if b'"readings"' in payload:  # a gateway message (or a reading with odd text: slow path)
        try:
            items = _GATEWAY.decode(payload).readings
        except msgspec.DecodeError:
            items = None
        if items:  # an empty or odd gateway message gets its reason from the slow path
            readings: list[Parsed] = []
            rejects: list[Reject] = []
            for raw in items:
                parsed = _parse_fast(raw, topic, raw_message_id)
                if parsed is not None:
                    readings.append(parsed)
                    continue
                slow, bad = parse_slow(bytes(raw), topic, raw_message_id, gateway_item=True)
                readings.extend(slow)
                rejects.extend(bad)
            return readings, rejects
    else:
        parsed = _parse_fast(payload, topic, raw_message_id)
        if parsed is not None:
            return [parsed], []
    return parse_slow(payload, topic, raw_message_id, gateway_item=False)


def parse_slow(
    payload: bytes, topic: str, raw_message_id: int | None, *, gateway_item: bool
) -> tuple[list[Parsed], list[Reject]]:
    """Every check with its reason (what the fast path did not accept)."""
    try:
        doc = json.loads(payload)  # strict JSON (no `0143`), as the fast path
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return [], [Reject(QuarantineReason.MALFORMED, f"invalid JSON: {exc}"[:500], payload, "")]
    if not gateway_item and isinstance(doc, dict) and "readings" in doc:
        items = doc["readings"]
        extra = sorted(set(doc) - {"v", "readings"})
        problem = None
        if extra:
            problem = (QuarantineReason.MALFORMED,
                       f"unexpected 'readings' key beside {', '.join(extra)[:200]}")  # fmt: skip
        elif type(doc.get("v")) is not int or doc.get("v") != 1:
            problem = (QuarantineReason.BAD_VERSION, f"v: {doc.get('v')!r}, expected the integer 1")
        elif not isinstance(items, list):
            problem = (QuarantineReason.MALFORMED, "readings: expected a list")
        elif not items:
            problem = (QuarantineReason.MALFORMED, "readings: empty gateway message")
        if problem:
            serial = doc.get("serial", "")
            return [], [Reject(*problem, payload, serial if isinstance(serial, str) else "")]
    else:
        items = [doc]
    single = len(items) == 1 and (gateway_item or items[0] is doc)
    readings: list[Parsed] = []
    rejects: list[Reject] = []
    for item in items:
        body = payload if single else json.dumps(item, separators=(",", ":")).encode()
        try:
            readings.append(parse_item(item, topic=topic, raw_message_id=raw_message_id, body=body))
        except Rejected as exc:
            serial = item.get("serial", "") if isinstance(item, dict) else ""
            rejects.append(Reject(exc.reason, exc.detail, body, str(serial)[:64]))
    return readings, rejects
