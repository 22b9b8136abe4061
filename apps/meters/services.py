"""Write services of the meters app (the ingest pipeline itself lives in `apps.meters.readings`)."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.types import Actor
from apps.meters.lock_objects import conflict_lock, meter_lock, open_quarantine_lock
from apps.meters.models import (
    Conflict,
    GatewayToken,
    Meter,
    MeterExchange,
    MeterKeyHistory,
    MeterOccupancy,
    MeterRegisterRead,
    Quality,
    Source,
)
from apps.meters.readings.partitions import partitions_ensure
from apps.meters.readings.rollups import rollups_mark_dirty
from apps.meters.readings.store import ReadingRow, readings_insert
from apps.meters.readings.versions import readings_changed
from apps.meters.signing import SignedFields, sign_reading
from apps.notifications.models import Kind as NotificationKind
from apps.notifications.services import notify

READING_COLUMNS = (
    "meter_id",
    "interval_start",
    "version",
    "is_current",
    "interval_seconds",
    "import_wh",
    "export_wh",
    "register_import_wh",
    "register_export_wh",
    "status",
    "seq",
    "signature",
    "quality",
    "flags",
    "source",
    "reason",
    "raw_message_id",
    "ingested_at",
)


@dataclass(frozen=True, slots=True)
class BackfillRow:
    """One already-validated historical interval reading.

    `register_*_wh` default to running sums per meter (continuing from the meter's latest stored
    register); `seq` defaults to `interval_start // interval_seconds` (Unix seconds), which is
    also what `simulate_meters` uses, so live readings continue the sequence. With a
    `private_key` (32 bytes, the device key) the row is signed exactly like a device would.
    """

    meter_id: int
    interval_start: datetime
    import_wh: int
    export_wh: int
    quality: int = Quality.VALID
    interval_seconds: int = 900
    register_import_wh: int | None = None
    register_export_wh: int | None = None
    status: int = 0
    seq: int | None = None
    private_key: bytes | None = None


def default_seq(interval_start: datetime, interval_seconds: int = 900) -> int:
    return int(interval_start.timestamp()) // interval_seconds


def _sign_chunk(items: Sequence[tuple[bytes, SignedFields]]) -> list[bytes]:
    return [sign_reading(key, fields) for key, fields in items]


def _sign_all(items: list[tuple[bytes, SignedFields]]) -> list[bytes]:
    """Sign in a process pool when it pays (signing costs tens of µs per reading
    on one core; bench/RESULTS.md)."""
    workers = min(os.cpu_count() or 1, 8)
    if len(items) < 20_000 or workers < 2:
        return _sign_chunk(items)
    size = -(-len(items) // (workers * 4))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    try:
        import multiprocessing

        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork")
        ) as pool:
            return [sig for part in pool.map(_sign_chunk, chunks) for sig in part]
    except (AssertionError, OSError):  # e.g. inside a daemonic Celery worker process
        return _sign_chunk(items)


@transaction.atomic
def readings_backfill(*, rows: Iterable[BackfillRow], source: str = Source.BACKFILL) -> int:
    """Bulk-load already-validated historical readings (COPY); return the number inserted.

    Rows whose (meter, interval) already has a current reading are skipped, so a re-run is
    harmless. Rows are stored as version 1 with their quality code and every signed field.
    """
    rows = sorted(rows, key=lambda r: (r.meter_id, r.interval_start))
    if not rows:
        return 0
    meter_ids = sorted({r.meter_id for r in rows})
    serials = dict(Meter.objects.filter(id__in=meter_ids).values_list("id", "serial"))
    missing = set(meter_ids) - set(serials)
    if missing:
        from apps.core.exceptions import ApplicationError

        raise ApplicationError("Unknown meters in backfill.", {"meter_ids": sorted(missing)})
    first = rows[0].interval_start
    last = max(r.interval_start for r in rows)
    partitions_ensure(start=min(r.interval_start for r in rows), end=last)

    # Continue registers from the latest stored value before each meter's first row.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (meter_id) meter_id, register_import_wh, register_export_wh "
            "FROM meters_reading WHERE is_current AND meter_id = ANY(%s) AND interval_start < %s "
            "ORDER BY meter_id, interval_start DESC",
            [meter_ids, first],
        )
        registers = {m: [ri, re_] for m, ri, re_ in cursor.fetchall()}

    prepared: list[list] = []
    to_sign: list[tuple[bytes, SignedFields]] = []
    sign_index: list[int] = []
    running: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    running.update(registers)
    for row in rows:
        reg = running[row.meter_id]
        reg[0] += row.import_wh
        reg[1] += row.export_wh
        ri = row.register_import_wh if row.register_import_wh is not None else reg[0]
        re_ = row.register_export_wh if row.register_export_wh is not None else reg[1]
        start = row.interval_start.astimezone(UTC)
        seq = row.seq if row.seq is not None else default_seq(start, row.interval_seconds)
        if row.private_key is not None:
            fields = SignedFields(
                serials[row.meter_id],
                seq,
                int(start.timestamp()),
                row.interval_seconds,
                row.import_wh,
                row.export_wh,
                ri,
                re_,
                row.status,
            )
            sign_index.append(len(prepared))
            to_sign.append((row.private_key, fields))
        prepared.append(
            [
                row.meter_id,
                start,
                row.interval_seconds,
                row.import_wh,
                row.export_wh,
                ri,
                re_,
                row.status,
                seq,
                None,
                int(row.quality),
            ]  # fmt: skip
        )
    for index, signature in zip(sign_index, _sign_all(to_sign), strict=True):
        prepared[index][9] = signature

    now = timezone.now()
    data = _copy_text(prepared, source, now)
    columns = (
        "meter_id, interval_start, interval_seconds, import_wh, export_wh, register_import_wh, "
        "register_export_wh, status, seq, signature, quality, source, ingested_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM meters_reading WHERE meter_id = ANY(%s) AND interval_start >= %s "
            "AND interval_start <= %s LIMIT 1",
            [meter_ids, first, last],
        )
        fresh = cursor.fetchone() is None
        inserted = None
        if fresh:  # nothing stored in the range: COPY straight into the partitioned table
            try:
                sql = f"COPY meters_reading ({columns}) FROM STDIN"
                with transaction.atomic(), cursor.cursor.copy(sql) as copy:
                    copy.write(data)
                inserted = len(prepared)
            except IntegrityError:  # a concurrent writer got there first: take the safe path
                inserted = None
        if inserted is None:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS _meters_backfill "
                "(LIKE meters_reading INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            with cursor.cursor.copy(f"COPY _meters_backfill ({columns}) FROM STDIN") as copy:
                copy.write(data)
            cursor.execute(
                f"INSERT INTO meters_reading ({', '.join(READING_COLUMNS)}) "  # noqa: S608
                f"SELECT {', '.join(READING_COLUMNS)} FROM _meters_backfill "
                "ON CONFLICT DO NOTHING"
            )
            inserted = cursor.rowcount
            cursor.execute("DROP TABLE _meters_backfill")
        _last_seen_from_history(cursor, rows)
    rollups_mark_dirty(meter_ids=meter_ids, hours=_hours_between(first, last))
    audit_log_write(
        event=AuditEvent.READINGS_BACKFILLED,
        target_type="meters.reading",
        details={"source": source, "rows": len(prepared), "inserted": inserted,
                 "meters": len(meter_ids), "from": first.isoformat(), "to": last.isoformat()},
    )  # fmt: skip
    return inserted


def _last_seen_from_history(cursor, rows: list[BackfillRow]) -> None:
    """A meter whose history was loaded was last heard from at the end of its latest interval
    (never moved back): the staff ingest page lists it as silent only once that is an hour old.
    Rows are locked in id order first, as the ingest pipeline does, so the two never deadlock."""
    ends: dict[int, datetime] = {}
    for row in rows:
        end = row.interval_start.astimezone(UTC) + timedelta(seconds=row.interval_seconds)
        if row.meter_id not in ends or end > ends[row.meter_id]:
            ends[row.meter_id] = end
    ids = sorted(ends)
    cursor.execute("SELECT id FROM meters_meter WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids])
    cursor.execute(
        "UPDATE meters_meter m SET last_seen = GREATEST(m.last_seen, k.t) "
        "FROM unnest(%s::bigint[], %s::timestamptz[]) AS k(id, t) WHERE m.id = k.id",
        [ids, [ends[i] for i in ids]],
    )


def _copy_text(prepared: list[list], source: str, now: datetime) -> bytes:
    """COPY text format, built with f-strings (several times faster than write_row per row)."""
    stamps: dict[datetime, str] = {}
    stamp_now = now.isoformat()
    lines = []
    for meter_id, start, seconds, imp, exp, ri, re_, status, seq, sig, quality in prepared:
        ts = stamps.get(start)
        if ts is None:
            ts = stamps[start] = start.isoformat()
        sig_text = "\\N" if sig is None else "\\\\x" + sig.hex()
        lines.append(
            f"{meter_id}\t{ts}\t{seconds}\t{imp}\t{exp}\t{ri}\t{re_}\t{status}\t{seq}\t"
            f"{sig_text}\t{quality}\t{source}\t{stamp_now}\n"
        )
    return "".join(lines).encode()


def _hours_between(start: datetime, end: datetime) -> list[datetime]:
    from datetime import timedelta

    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour <= end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def meter_status_record(*, topic: str, payload: bytes, now: datetime | None = None) -> bool:
    """A device status message (apps/meters/device_messages.py): when signed by the meter of its
    topic and fresh, update last seen and the reported firmware, and announce reported device
    state (state of charge, EV plugged/charging) with `apps.meters.signals.
    device_status_recorded`; anything else is quarantined with the check it failed (and changes
    nothing). True when recorded."""
    import json

    from apps.meters.device_messages import status_device_state, status_problem
    from apps.meters.readings.pipeline import pg_text
    from apps.meters.signals import device_status_recorded

    now = now or timezone.now()
    parts = topic.rsplit("/", 3)
    topic_serial = parts[2] if len(parts) == 4 and parts[3] == "status" else ""
    meter = Meter.objects.filter(serial=topic_serial).only("pk", "address").first()
    problem: tuple[str, str] | None
    if len(payload) > 4096:
        problem = ("oversized", f"{len(payload)} bytes (a status message is at most 4096)")
    else:
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            doc, problem = None, ("malformed", f"invalid JSON: {exc}")
        else:
            problem = status_problem(
                doc,
                topic_serial=topic_serial,
                device_address=meter.address if meter else None,
                now=now.timestamp(),
            )
    if problem is not None or meter is None:
        reason, detail = problem or ("unknown_meter", topic_serial)
        device_message_quarantine(
            topic=topic, serial=topic_serial, reason=reason, detail=detail, payload=payload
        )
        return False
    updates: dict = {"last_seen": now}
    firmware = doc.get("firmware")
    if isinstance(firmware, str) and firmware:
        updates["firmware_version"] = pg_text(firmware)[:40]
    recorded = Meter.objects.filter(pk=meter.pk).update(**updates) == 1
    state = status_device_state(doc)
    if recorded and state:
        device_status_recorded.send(sender=Meter, serial=topic_serial, state=state, at=now)
    return recorded


def meter_status_flood_record(*, topic: str, payload: bytes, limit: int) -> None:
    """A device sent more than `limit` status messages within a minute: its first message over
    the limit is kept in the quarantine as `rate_limited` (listed on the staff ingest page as a
    status flood); the bridge drops the rest of that minute's unread."""
    parts = topic.rsplit("/", 3)
    serial = parts[2] if len(parts) == 4 else ""
    device_message_quarantine(
        topic=topic, serial=serial, reason="rate_limited", payload=payload,
        detail=f"more than {limit} status messages within a minute from {serial}; the rest of "
        "the minute's are dropped unread",
    )  # fmt: skip


def device_message_quarantine(
    *, topic: str, serial: str, reason: str, detail: str, payload: bytes
) -> None:
    """Keep a refused device message (a status here, a command acknowledgement from the grid app)
    in the quarantine with the check it failed, visible on the staff ingest page."""
    from apps.meters.models import Quarantine, QuarantineReason
    from apps.meters.readings.pipeline import pg_text

    if reason not in QuarantineReason.values:
        raise ValueError(f"unknown quarantine reason {reason!r}")
    Quarantine.objects.create(
        received_at=timezone.now(), source=Source.MQTT, topic=pg_text(topic)[:300],
        serial=pg_text(serial)[:64], reason=reason, detail=pg_text(detail)[:500],
        payload=payload[:4096],
    )  # fmt: skip


@transaction.atomic
def gaps_estimate(*, meter_ids: Iterable[int] | None = None, start: datetime, end: datetime) -> int:
    """Fill missing intervals between present readings in [start, end) with flagged estimates
    (apps.meters.vee.estimate_gap: interpolation for short gaps, same-weekday profile for long).

    Estimates are version 1, quality 8/9, source "estimate", without a device signature. A late
    real reading later replaces an estimate as a new version (see the ingest service).
    """
    from datetime import timedelta

    from apps.meters import vee

    ids = list(meter_ids) if meter_ids is not None else None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT meter_id, interval_start, interval_seconds, import_wh, export_wh, "  # noqa: S608
            "register_import_wh, register_export_wh FROM meters_reading "
            "WHERE is_current AND interval_start >= %s AND interval_start < %s "
            + ("AND meter_id = ANY(%s) " if ids is not None else "")
            + "ORDER BY meter_id, interval_start",
            [start - timedelta(days=7), end] + ([ids] if ids is not None else []),
        )
        rows = cursor.fetchall()
    per_meter: dict[int, list] = defaultdict(list)
    for row in rows:
        per_meter[row[0]].append(row)
    lo = int(start.timestamp())
    inserts: list[ReadingRow] = []
    for meter_id, meter_rows in per_meter.items():
        present = {int(r[1].timestamp()): r for r in meter_rows}
        reference = {t: (r[3], r[4]) for t, r in present.items()}
        starts = sorted(t for t in present if t >= lo)
        seconds = meter_rows[-1][2] or 900
        for gap in vee.find_gaps(starts, seconds):
            before, after = present[gap[0] - seconds], present[gap[-1] + seconds]
            reg_i, reg_e = before[5], before[6]
            for t, imp, exp, quality in vee.estimate_gap(
                gap, (before[3], before[4]), (after[3], after[4]), reference
            ):
                reg_i, reg_e = reg_i + imp, reg_e + exp
                inserts.append(
                    ReadingRow(
                        meter_id=meter_id,
                        interval_start=t,
                        version=1,
                        interval_seconds=seconds,
                        import_wh=imp,
                        export_wh=exp,
                        register_import_wh=reg_i,
                        register_export_wh=reg_e,
                        status=0,
                        seq=None,
                        signature=None,
                        quality=quality,
                        flags=int(vee.Flag.ESTIMATED),
                        reason="estimated gap",
                        raw_message_id=None,
                    )
                )
    if not inserts:
        return 0
    written = readings_insert(inserts, Source.ESTIMATE)
    rollups_mark_dirty(
        meter_ids={row.meter_id for row in inserts}, starts=[row.interval_start for row in inserts]
    )
    audit_log_write(
        event=AuditEvent.READING_GAPS_ESTIMATED,
        target_type="meters.reading",
        details={"estimated": len(written), "from": start.isoformat(), "to": end.isoformat()},
    )
    return len(written)


def meter_config_publish(*, meter: Meter) -> None:
    """Publish the meter's configuration on its retained config topic (device sync)."""
    meter_configs_publish(meters=[meter])


def meter_configs_publish(*, meters: Sequence[Meter]) -> None:
    """Publish several meters' configurations over one broker connection (e.g. after an
    import of many new meters), each signed by the cooperative's command key with the meter's
    next configuration sequence number (persisted first) and an expiry METER_CONFIG_TTL_S
    ahead (apps/meters/device_messages.py)."""
    from django.conf import settings

    from apps.meters import mqtt_client
    from apps.meters.command_key import cooperative_command_key
    from apps.meters.device_messages import CONFIG, sign_message

    if not meters:
        return
    key = cooperative_command_key()
    expires_at = timezone.now() + timedelta(seconds=settings.METER_CONFIG_TTL_S)
    docs = []
    with transaction.atomic():
        for meter in sorted(meters, key=lambda m: m.pk):  # lock order: primary key
            locked = meter_lock(meter.pk)
            locked.config_seq += 1
            locked.save(update_fields=["config_seq"])
            meter.config_seq = locked.config_seq
            doc = {
                "v": 1,
                "serial": locked.serial,
                "seq": locked.config_seq,
                "expires_at": expires_at.isoformat(),
                "interval": locked.interval_seconds,
                "firmware_target": locked.firmware_target,
                "config_version": locked.config_version,
            }
            docs.append((locked.serial, sign_message(CONFIG, doc, key)))
    client = mqtt_client.make_client(f"es-config-{meters[0].pk}-{os.getpid()}")
    mqtt_client.connect_client(client, mqtt_client.broker_from_url(settings.MQTT_COMMANDS_URL))
    client.loop_start()
    try:
        sent = [
            mqtt_client.publish_json(
                client, mqtt_client.config_topic(settings.MQTT_TOPIC_PREFIX, serial), doc,
                retain=True,
            )
            for serial, doc in docs
        ]  # fmt: skip
        for info in sent:
            info.wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def gateway_rate_take(*, gateway: str) -> bool:
    """Count one request of HTTP gateway `gateway` in the current minute (Redis); False when it is
    over METER_GATEWAY_REQUESTS_PER_MINUTE. Fails open if the cache is unreachable (the raw
    store and the device signatures still apply)."""
    import logging
    import time

    from django.core.cache import cache

    key = f"meters:gateway-rate:{gateway}:{int(time.time() // 60)}"
    try:
        cache.add(key, 0, timeout=120)
        count = cache.incr(key)
    except Exception:  # noqa: BLE001 - a cache outage must not stop ingest
        logging.getLogger(__name__).warning("gateway rate limit unavailable for %s", gateway)
        return True
    return count <= settings.METER_GATEWAY_REQUESTS_PER_MINUTE


@transaction.atomic
def gateway_token_issue(*, name: str, actor: Actor = None) -> str:
    """Issue a new token for the HTTP gateway `name` (revoking its previous one); the token is
    returned once and only its SHA-256 is stored."""
    from apps.core.exceptions import ApplicationError

    name = name.strip()
    if not name:
        raise ApplicationError("A gateway needs a name.", {"name": "empty"})
    token = secrets.token_urlsafe(32)
    GatewayToken.objects.filter(name=name).delete()
    gateway = GatewayToken.objects.create(
        name=name[:100], token_sha256=hashlib.sha256(token.encode()).hexdigest()
    )
    audit_log_write(
        event=AuditEvent.GATEWAY_TOKEN_ISSUED,
        actor=actor,
        target=gateway,
        details={"name": gateway.name},
    )
    return token


#: Interval lengths a meter may report (each divides an hour, so intervals align to the hour).
METER_INTERVALS_S = frozenset({60, 300, 600, 900, 1800, 3600})


def _public_key_uncompressed(public_key_hex: str) -> bytes:
    import coincurve

    from apps.core.exceptions import ApplicationError

    try:
        public = coincurve.PublicKey(bytes.fromhex(public_key_hex.strip().removeprefix("0x")))
    except (ValueError, TypeError) as exc:
        raise ApplicationError("Not a secp256k1 public key.", {"public_key": str(exc)}) from exc
    return public.format(compressed=False)


@transaction.atomic
def meter_register(
    *,
    serial: str,
    member_id: int | None,
    asset_kind: str,
    direction: str,
    capacity_w: int,
    active_from: datetime,
    interval_seconds: int = 900,
    multiplier: int = 1,
    public_key_hex: str = "",
    publish_config: bool = True,
    actor: Actor = None,
) -> Meter:
    """Register a new meter (onboarding, one by one or from an import file): every field is
    checked, the device key (optional) is stored with its Ethereum address, the registration is
    audited and, with a key, the meter's configuration is published after the commit.

    Raises ApplicationError naming the field for anything wrong, and writes nothing then."""
    from apps.core.exceptions import ApplicationError
    from apps.meters.signing import address_from_public_key

    serial = (serial or "").strip()
    if not serial or len(serial) > 40 or any(ch.isspace() or ord(ch) < 32 for ch in serial):
        raise ApplicationError(
            "The serial must be 1 to 40 characters without spaces.", {"serial": serial}
        )
    if Meter.objects.filter(serial=serial).exists():
        raise ApplicationError(
            f"A meter with serial {serial} is already registered.", {"serial": serial}
        )
    if asset_kind not in Meter.AssetKind.values:
        raise ApplicationError(
            f"Unknown asset kind {asset_kind!r} (one of {', '.join(Meter.AssetKind.values)}).",
            {"asset_kind": asset_kind},
        )
    if direction not in Meter.Direction.values:
        raise ApplicationError(
            f"Unknown direction {direction!r} (one of {', '.join(Meter.Direction.values)}).",
            {"direction": direction},
        )
    if interval_seconds not in METER_INTERVALS_S:
        raise ApplicationError(
            f"Interval {interval_seconds} s is not one of {sorted(METER_INTERVALS_S)}.",
            {"interval_seconds": interval_seconds},
        )
    if not 0 < capacity_w <= 100_000_000:
        raise ApplicationError(
            "The capacity must be between 1 W and 100 MW.", {"capacity_w": capacity_w}
        )
    if not 1 <= multiplier <= 10_000:
        raise ApplicationError("The multiplier must be 1 to 10000.", {"multiplier": multiplier})
    if active_from.tzinfo is None:
        raise ApplicationError("The start date needs a time zone.", {"active_from": active_from})
    meter = Meter(serial=serial, member_id=member_id, asset_kind=asset_kind, direction=direction,
                  capacity_w=capacity_w, active_from=active_from,
                  interval_seconds=interval_seconds, multiplier=multiplier)  # fmt: skip
    if public_key_hex.strip():
        uncompressed = _public_key_uncompressed(public_key_hex)
        meter.public_key = uncompressed.hex()
        meter.address = address_from_public_key(uncompressed)
        if Meter.objects.filter(address=meter.address).exists():
            raise ApplicationError(
                "This device key is already registered to another meter.",
                {"public_key": public_key_hex},
            )
    meter.save(force_insert=True)
    audit_log_write(
        event=AuditEvent.METER_REGISTERED,
        actor=actor,
        target=meter,
        details={"serial": serial, "member": member_id, "address": meter.address},
    )
    if meter.public_key and publish_config:
        transaction.on_commit(lambda: _publish_quietly(meter))
    return meter


@transaction.atomic
def meter_key_rotate(*, meter: Meter, public_key_hex: str, actor: Actor = None) -> Meter:
    """Register (or rotate) the device key: store the public key and its Ethereum address,
    bump the configuration version and publish the new config (retained) after commit."""
    from apps.meters.signing import address_from_public_key

    uncompressed = _public_key_uncompressed(public_key_hex)
    old_address = meter.address
    now = timezone.now()
    if meter.address:  # a key set before the history existed: keep it verifiable
        MeterKeyHistory.objects.get_or_create(
            meter=meter, address=meter.address,
            defaults={"public_key": meter.public_key, "registered_at": now},
        )  # fmt: skip
    meter.public_key = uncompressed.hex()
    meter.address = address_from_public_key(uncompressed)
    meter.config_version += 1
    meter.save(update_fields=["public_key", "address", "config_version"])
    MeterKeyHistory.objects.get_or_create(
        meter=meter, address=meter.address,
        defaults={"public_key": meter.public_key, "registered_at": now},
    )  # fmt: skip
    audit_log_write(event=AuditEvent.METER_KEY_ROTATED, actor=actor, target=meter,
                    details={"old_address": old_address, "new_address": meter.address})  # fmt: skip
    transaction.on_commit(lambda: _publish_quietly(meter))
    return meter


@transaction.atomic
def meter_assign(
    *, meter: Meter, member_id: int | None, since: datetime, actor: Actor = None
) -> Meter:
    """Give the meter to another member (a move-in; `member_id` None: nobody) from `since`: the
    new occupant sees and is settled for readings from then on only; the previous occupant's
    occupancy is recorded (`MeterOccupancy`), so they keep seeing and being billed for their
    own days and nobody else gets them."""
    from apps.core.exceptions import ApplicationError

    meter = meter_lock(meter.pk)
    previous = meter.member_id
    if previous == member_id:
        return meter
    if meter.member_since is not None and since <= meter.member_since:
        raise ApplicationError(
            f"Meter {meter.serial} changed hands at {meter.member_since.isoformat()}; "
            "a later change must start after it.",
            {"since": since.isoformat()},
        )
    if previous is not None:  # the leaving member keeps their own days
        MeterOccupancy.objects.create(
            meter=meter, member_id=previous, start=meter.member_since, end=since
        )
    meter.member_id = member_id
    meter.member_since = since
    meter.save(update_fields=["member", "member_since"])
    readings_changed(meter_ids=[meter.pk])  # whose pages show its readings changed
    audit_log_write(
        event=AuditEvent.METER_ASSIGNED,
        actor=actor,
        target=meter,
        details={"from_member": previous, "to_member": member_id, "since": since.isoformat()},
    )
    return meter


def _interval_floor(at: datetime, seconds: int) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def _reading_before(meter: Meter, before: datetime) -> tuple | None:
    """(interval_start, import, export, register_import, register_export, quality) of the
    meter's newest current reading starting before `before`, or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT interval_start, import_wh, export_wh, register_import_wh, "
            "register_export_wh, quality FROM meters_reading WHERE is_current AND meter_id = %s "
            "AND interval_start < %s AND interval_start >= %s "
            "ORDER BY interval_start DESC LIMIT 1",
            [meter.pk, before, before - timedelta(days=62)],
        )
        return cursor.fetchone()


def _mean_interval_wh(meter: Meter, before: datetime) -> tuple[int, int]:
    """Mean import and export Wh per interval over the meter's last day before `before`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(avg(import_wh), 0), coalesce(avg(export_wh), 0) FROM meters_reading "
            "WHERE is_current AND meter_id = %s AND interval_start >= %s AND interval_start < %s",
            [meter.pk, before - timedelta(days=1), before],
        )
        imp, exp = cursor.fetchone()
    return round(imp), round(exp)


@transaction.atomic
def meter_registers_read(
    *, meter: Meter, at: datetime, estimated: bool, actor: Actor = None
) -> MeterRegisterRead:
    """Record the meter's registers at `at` (a move: the final reading of one occupancy and
    the opening one of the next; `at` on the meter's interval grid).

    Real (`estimated=False`): the registers the device reported at the end of the interval
    before `at` — that reading must be stored and measured (not estimated), else
    ApplicationError. Estimated: the newest stored registers before `at` plus the meter's mean
    interval energy of the day before for each interval missing up to `at`; quality 8
    (estimated), so statements and the audit log say so."""
    from apps.core.exceptions import ApplicationError

    seconds = meter.interval_seconds
    if int(at.timestamp()) % seconds:
        raise ApplicationError(
            f"{at.isoformat()} is not on meter {meter.serial}'s {seconds}-s interval grid.",
            {"at": at.isoformat()},
        )
    last = _reading_before(meter, at)
    expected = at - timedelta(seconds=seconds)
    if not estimated:
        if (
            last is None
            or last[0] != expected
            or last[5] in (Quality.ESTIMATED, Quality.INTERPOLATED)
        ):
            raise ApplicationError(
                f"Meter {meter.serial} has no measured reading of the interval "
                f"{expected.isoformat()}; record an estimated final reading instead.",
                {"meter": meter.serial, "interval_start": expected.isoformat()},
            )
        reg_i, reg_e, quality = last[3], last[4], Quality.VALID
    else:
        mean_i, mean_e = _mean_interval_wh(meter, at)
        if last is None:
            reg_i, reg_e, missing = 0, 0, 0
        else:
            missing = int((expected - last[0]).total_seconds()) // seconds
            reg_i, reg_e = last[3] + missing * mean_i, last[4] + missing * mean_e
        quality = Quality.ESTIMATED
    read = MeterRegisterRead.objects.create(
        meter=meter, read_at=at, register_import_wh=reg_i, register_export_wh=reg_e,
        quality=quality, reason=MeterRegisterRead.Reason.MOVE,
    )  # fmt: skip
    audit_log_write(
        event=AuditEvent.METER_REGISTERS_READ,
        actor=actor,
        target=meter,
        details={"at": at.isoformat(), "register_import_wh": reg_i, "register_export_wh": reg_e,
                 "quality": int(quality), "estimated": estimated},
    )  # fmt: skip
    return read


@transaction.atomic
def meter_exchange(
    *,
    old_meter: Meter,
    new_serial: str,
    new_public_key: str,
    at: datetime,
    old_final_register_wh: int,
    new_initial_register_wh: int,
    old_final_register_export_wh: int | None = None,
    new_initial_register_export_wh: int = 0,
    actor: Actor = None,
) -> MeterExchange:
    """Replace `old_meter` by a new device at `at` (same site, same member, same kind).

    The exchange interval is the one holding `at`. The old meter's reading of the interval
    before it must be stored (its registers are where the final reading continues from); the
    old meter's share of the exchange interval (final − previous registers) is recorded as its
    last reading (source "exchange", unsigned, not anchored) and it is retired after that
    interval (`active_to`: no gap estimated, not "not heard from"). The new meter is registered
    with its device key from the exchange interval on; its first reading is checked by VEE
    against `new_initial_register_wh` (no register mismatch, no spike from the register
    restarting) and a genuine spike is still flagged against the old meter's typical value,
    which it inherits. The new key reaches MeterOracle as a first key (`meter_register`
    intent) when its first readings are anchored (apps.chain.anchoring)."""
    from apps.core.exceptions import ApplicationError

    old = meter_lock(old_meter.pk)
    seconds = old.interval_seconds
    if at.tzinfo is None:
        raise ApplicationError("The exchange time needs a time zone.", {"at": str(at)})
    if old.active_to is not None:
        raise ApplicationError(
            f"Meter {old.serial} is already retired (active to {old.active_to.isoformat()}).",
            {"meter": old.serial},
        )
    if at < old.active_from:
        raise ApplicationError(
            "The exchange cannot be before the meter was installed.", {"at": at.isoformat()}
        )
    start = _interval_floor(at, seconds)
    previous = _reading_before(old, start)
    before = start - timedelta(seconds=seconds)
    if previous is None or previous[0] != before:
        raise ApplicationError(
            f"Meter {old.serial} has no reading of the interval {before.isoformat()} before the "
            "exchange: its registers are where the final reading continues from (wait for it, "
            "or let the gap estimator fill it).",
            {"meter": old.serial, "interval_start": before.isoformat()},
        )
    prev_i, prev_e = previous[3], previous[4]
    final_e = prev_e if old_final_register_export_wh is None else old_final_register_export_wh
    if old_final_register_wh < prev_i or final_e < prev_e:
        raise ApplicationError(
            f"The old meter's final register ({old_final_register_wh} Wh) is below its last "
            f"reading's ({prev_i} Wh).",
            {"old_final_register_wh": old_final_register_wh},
        )
    if not new_public_key.strip():
        raise ApplicationError(
            "The new meter needs its device public key.", {"new_public_key": new_public_key}
        )
    if min(new_initial_register_wh, new_initial_register_export_wh) < 0:
        raise ApplicationError(
            "The new meter's initial registers cannot be negative.",
            {"new_initial_register_wh": new_initial_register_wh},
        )
    if _reading_before(old, start + timedelta(days=62)) not in (None, previous):
        raise ApplicationError(
            f"Meter {old.serial} already has readings from the exchange interval on.",
            {"meter": old.serial, "interval_start": start.isoformat()},
        )
    new = meter_register(
        serial=new_serial, member_id=old.member_id, asset_kind=old.asset_kind,
        direction=old.direction, capacity_w=old.capacity_w, active_from=start,
        interval_seconds=seconds, multiplier=old.multiplier, public_key_hex=new_public_key,
        actor=actor,
    )  # fmt: skip
    new.connection_point_id = old.connection_point_id
    new.typical_wh = old.typical_wh or max(previous[1], previous[2]) or None
    new.save(update_fields=["connection_point", "typical_wh"])
    from apps.meters import vee

    partitions_ensure(start=start, end=start + timedelta(seconds=seconds))
    row = ReadingRow(
        meter_id=old.pk, interval_start=int(start.timestamp()), version=1,
        interval_seconds=seconds, import_wh=old_final_register_wh - prev_i,
        export_wh=final_e - prev_e, register_import_wh=old_final_register_wh,
        register_export_wh=final_e, status=0, seq=None, signature=None, quality=Quality.VALID,
        flags=int(vee.Flag.METER_EXCHANGE), reason="final reading at meter exchange",
        raw_message_id=None,
    )  # fmt: skip
    readings_insert([row], Source.EXCHANGE)
    rollups_mark_dirty(meter_ids=[row.meter_id], starts=[row.interval_start])
    old.active_to = start + timedelta(seconds=seconds)
    old.save(update_fields=["active_to"])
    exchange = MeterExchange.objects.create(
        old_meter=old, new_meter=new, at=at, interval_start=start,
        old_previous_register_wh=prev_i, old_final_register_wh=old_final_register_wh,
        old_previous_register_export_wh=prev_e, old_final_register_export_wh=final_e,
        new_initial_register_wh=new_initial_register_wh,
        new_initial_register_export_wh=new_initial_register_export_wh,
    )  # fmt: skip
    MeterRegisterRead.objects.bulk_create([
        MeterRegisterRead(meter=old, read_at=at, register_import_wh=old_final_register_wh,
                          register_export_wh=final_e, quality=Quality.VALID,
                          reason=MeterRegisterRead.Reason.EXCHANGE_REMOVED),
        MeterRegisterRead(meter=new, read_at=at, register_import_wh=new_initial_register_wh,
                          register_export_wh=new_initial_register_export_wh,
                          quality=Quality.VALID,
                          reason=MeterRegisterRead.Reason.EXCHANGE_INSTALLED),
    ])  # fmt: skip
    audit_log_write(
        event=AuditEvent.METER_EXCHANGED,
        actor=actor,
        target=old,
        details={"old_serial": old.serial, "new_serial": new.serial, "at": at.isoformat(),
                 "interval_start": start.isoformat(), "old_previous_register_wh": prev_i,
                 "old_final_register_wh": old_final_register_wh,
                 "new_initial_register_wh": new_initial_register_wh,
                 "new_address": new.address},
    )  # fmt: skip
    return exchange


def _publish_quietly(*meters: Meter) -> None:
    import logging

    try:
        meter_configs_publish(meters=meters)
    except Exception:  # noqa: BLE001 - the broker being down must not fail the registry write
        logging.getLogger(__name__).warning(
            "config publish for %s failed", ", ".join(m.serial for m in meters)
        )


def meter_configs_publish_after_commit(*, meters: Sequence[Meter]) -> None:
    """Once the current transaction commits, publish the meters' configurations (one broker
    connection; a broker that is down is logged, the registry write stands)."""
    if meters:
        transaction.on_commit(lambda: _publish_quietly(*meters))


def device_messages_deliver(
    *, messages: Sequence[tuple[str, bytes]], source: str = Source.MQTT, bridge: str = ""
) -> dict[str, int]:
    """Deliver device messages as the MQTT bridge does, and ingest them at once: stored raw (one
    batch), then verified, validated and written by the real pipeline (readings, conflicts,
    quarantine). For tools that replay or inject traffic (the demo loader); returns the counts."""
    from apps.meters.readings.pipeline import raw_batch_store, reading_batch_ingest

    batch_id = raw_batch_store(messages=messages, source=source, bridge=bridge)
    result = reading_batch_ingest(batch_id=batch_id)
    return {"batch": batch_id, "accepted": result.accepted, "duplicates": result.duplicates,
            "conflicts": result.conflicts, "rejected": result.rejected}  # fmt: skip


@transaction.atomic
def quarantine_reprocess(*, quarantine_ids: Iterable[int], actor=None) -> dict[str, int]:
    """Run quarantined readings through ingest again (e.g. after a key was registered late).

    Each item becomes `reprocessed` when its reading is now accepted (or is a duplicate of a
    stored one), otherwise `rejected_again` (the new rejection is quarantined with its reason).
    """
    from apps.meters.models import Quarantine
    from apps.meters.readings.pipeline import QuarantineItem, readings_ingest
    from apps.meters.readings.wire import parse_message

    items = open_quarantine_lock(quarantine_ids)
    counts = {"reprocessed": 0, "rejected_again": 0}
    for item in items:
        readings, rejects = parse_message(
            bytes(item.payload), topic=item.topic, raw_message_id=item.raw_message_id
        )
        result = readings_ingest(
            readings=readings,
            rejects=[QuarantineItem(*r, item.raw_message_id, item.topic) for r in rejects],
            source=Source.REPROCESS,
            batch=None,
        )
        ok = readings and result.rejected == 0
        item.reprocessed_at = timezone.now()
        item.transition_to(
            Quarantine.Status.REPROCESSED if ok else Quarantine.Status.REJECTED_AGAIN,
            actor=actor,
            update_fields=["reprocessed_at"],
        )
        counts["reprocessed" if ok else "rejected_again"] += 1
    audit_log_write(event=AuditEvent.QUARANTINE_REPROCESSED, actor=actor,
                    target_type="meters.quarantine",
                    details={"ids": [i.pk for i in items], **counts})  # fmt: skip
    return counts


@transaction.atomic
def meters_offline_notify(*, now: datetime | None = None) -> int:
    """Tell each member whose meter has gone silent for METERS_OFFLINE_AFTER_MINUTES: once per
    silence (the notification's key is the meter and its last-seen time, so a meter that comes
    back and falls silent again is notified again). Returns the notifications written."""
    from apps.meters.selectors import meters_silent

    now = now or timezone.now()
    after = timedelta(minutes=settings.METERS_OFFLINE_AFTER_MINUTES)
    sent = 0
    zone = ZoneInfo(settings.COOPERATIVE_TIME_ZONE)
    for meter in meters_silent(now=now, silent_after=after):
        assert meter.member is not None and meter.last_seen is not None  # selector filters
        seen = meter.last_seen.astimezone(zone)
        note = notify(
            member=meter.member,
            kind=NotificationKind.METER_OFFLINE,
            subject=f"Meter {meter.serial} has not reported since {seen:%d %b %H:%M}",
            body=(
                "We have received no readings from this meter for a while. Check its power and "
                "network connection; missing readings are estimated until it reports again."
            ),
            link=reverse("meters:meter_detail", args=[meter.pk]),
            dedup_key=f"meter_offline:{meter.pk}:{meter.last_seen.isoformat()}",
            actor="beat",
        )
        sent += note is not None
    return sent


class ConflictDecision:
    ACCEPT = "accept"
    DISMISS = "dismiss"


@transaction.atomic
def conflict_resolve(*, conflict: Conflict, decision: str, reason: str, actor: Actor) -> Conflict:
    """Decide an open conflict (staff, with a reason; audit-logged).

    - ``accept``: the conflict's value becomes the interval's current reading as a new version,
      the way a late correction arrives: the stored current version is kept (no longer
      current), the new row carries the device's signed value, VEE quality and flags
      (`Flag.CONFLICT`), ``source = conflict`` and the reason, and is ingested now, so the
      hour's rollups are marked dirty and the settlement, certificate and anchoring scans pick
      it up as a correction (re-settlement into adjustment lines). A value that fails VEE's
      reject rules cannot become current (ApplicationError, nothing written).
    - ``dismiss``: the status only; the stored reading stays current.

    The meter row, then the conflict row, are locked. Deciding again the way it was decided is a
    no-op (nothing written); the other way is refused (InvalidTransition).
    """
    from apps.core.exceptions import ApplicationError
    from apps.core.state import check_transition
    from apps.meters import vee
    from apps.meters.readings.pipeline import _load_meters
    from apps.meters.readings.store import current_readings, readings_supersede

    reason = (reason or "").strip()
    if decision not in (ConflictDecision.ACCEPT, ConflictDecision.DISMISS):
        raise ApplicationError(f"Unknown decision {decision!r}.", {"decision": decision})
    if not reason:
        raise ApplicationError("Give a reason for the decision.", {"reason": "required"})
    meter = meter_lock(conflict.meter_id)
    conflict = conflict_lock(conflict.pk)
    target = (
        Conflict.Status.ACCEPTED
        if decision == ConflictDecision.ACCEPT
        else Conflict.Status.DISMISSED
    )
    if conflict.status == target:
        return conflict  # already decided this way: idempotent
    check_transition(Conflict.TRANSITIONS, conflict.status, target)  # decided the other way
    details: dict = {"reason": reason[:500], "interval_start": conflict.interval_start.isoformat()}
    if decision == ConflictDecision.ACCEPT:
        start = int(conflict.interval_start.timestamp())
        prev_key = (meter.pk, start - conflict.interval_seconds)
        stored = current_readings({(meter.pk, start), prev_key})
        current = stored.get((meter.pk, start))
        value = (conflict.import_wh, conflict.export_wh,
                 conflict.register_import_wh, conflict.register_export_wh)  # fmt: skip
        if current is not None and tuple(current[1:5]) == value:
            details["version"] = current.version  # the value is already current
        else:
            spec = _load_meters({meter.serial})[meter.serial].spec
            prev_row = stored.get(prev_key)
            prev = vee.Previous(prev_key[1], *prev_row[1:5]) if prev_row is not None else None
            verdict = vee.validate(
                vee.Candidate(start, conflict.interval_seconds, *value),
                spec,
                prev,
                now=int(conflict.detected_at.timestamp()),
                tz=settings.COOPERATIVE_TIME_ZONE,
            )
            if verdict.reject:
                raise ApplicationError(
                    f"The conflicting value fails validation ({verdict.detail}): it cannot "
                    "become the current reading.",
                    {"decision": verdict.reject},
                )
            version = (current.version if current is not None else 0) + 1
            if current is not None:
                readings_supersede([(meter.pk, start, current.version)])
            row = ReadingRow(meter.pk, start, version, conflict.interval_seconds, *value,
                             conflict.device_status, conflict.seq,
                             bytes(conflict.signature) if conflict.signature else None,
                             verdict.quality, int(verdict.flags | vee.Flag.CONFLICT),
                             f"conflict accepted: {reason}"[:200],
                             conflict.raw_message_id)  # fmt: skip
            if not readings_insert([row], Source.CONFLICT):
                raise ApplicationError(
                    "The interval was written meanwhile; try again.", {"decision": "retry"}
                )
            rollups_mark_dirty(meter_ids=[meter.pk], starts=[start])
            details.update(version=version, replaced_version=current.version if current else None)
    conflict.resolved_at = timezone.now()
    conflict.transition_to(target, actor=actor, update_fields=["resolved_at"])
    audit_log_write(
        event=AuditEvent.CONFLICT_ACCEPTED
        if decision == ConflictDecision.ACCEPT
        else AuditEvent.CONFLICT_DISMISSED,
        actor=actor,
        target=conflict,
        details=details,
    )
    return conflict
