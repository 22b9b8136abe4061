"""Reads of the meters app. Every selector returns plain dataclasses/dicts/records; members only
ever see their own data (selectors taking a `member` filter by it; see `member_meter_get`).

Other apps read meter readings only here (never the reading tables): unless a selector says
otherwise it returns the *current* version of each (meter, interval) — a correction or a late
actual replacing an estimate is a new version, and only the newest counts. Energy is integer Wh
per interval, times are timezone-aware UTC datetimes of the interval start, and `quality` is the
Green Button / NAESB ESPI ReadingQuality code (`apps.meters.models.Quality`: 0 valid, 7 edited,
8 estimated, 9 interpolated, 10 questionable, 14 raw).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import Http404

from apps.core.replica import read_connection
from apps.meters.models import (
    GatewayToken,
    Meter,
    MeterKeyHistory,
    MeterOccupancy,
    Quality,
    Reading,
)
from apps.meters.readings.versions import meters_version_key
from apps.meters.signing import (
    SignedFields,
    reading_digest,
    recover_address,
    signature_problem,
    signed_fields_of,
)

ESTIMATED_QUALITIES = (Quality.ESTIMATED, Quality.INTERPOLATED)


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    import_wh: int
    export_wh: int
    quality: int
    version: int


@dataclass(frozen=True, slots=True)
class MemberIntervalEnergy:
    import_wh: int
    export_wh: int
    estimated: bool  # at least one of the member's meters is estimated in this interval


@dataclass(frozen=True, slots=True)
class AnchoringReading:
    """A current validated, device-signed reading with every signed field (for anchoring)."""

    meter_id: int
    serial: str
    address: str
    seq: int
    interval_start: int  # Unix seconds, UTC
    interval_seconds: int
    import_wh: int
    export_wh: int
    register_import_wh: int
    register_export_wh: int
    status: int
    signature: bytes
    version: int

    @property
    def fields(self) -> SignedFields:
        return signed_fields_of(self)

    @property
    def digest(self) -> bytes:
        """keccak256(abi.encode(...)) — what the device signed (apps.meters.signing)."""
        return reading_digest(self.fields)


# A member sees (and is settled and billed for) a meter's readings only within their occupancy:
# the current occupant from `Meter.member_since` on, a past occupant within their
# `MeterOccupancy` [start, end). The previous occupant's history stays theirs, and they keep it.
OCCUPANCY = Q(meter__member_since__isnull=True) | Q(interval_start__gte=F("meter__member_since"))


def occupancy_windows_sql(member_filter: str) -> str:
    """A `WITH w(meter_id, member_id, lo, hi)` clause: every occupancy window of the members
    matching `member_filter` (SQL after `member_id`, e.g. "= %s", "= ANY(%s)", "IS NOT NULL";
    its parameter, if any, is needed twice). Join readings with
    `JOIN w ON w.meter_id = r.meter_id AND r.interval_start >= w.lo AND r.interval_start < w.hi`
    and take the member from `w.member_id`."""
    return (
        "WITH w AS ("  # noqa: S608 - member_filter is one of our fixed SQL fragments
        "SELECT id AS meter_id, member_id, "
        "COALESCE(member_since, '-infinity'::timestamptz) AS lo, 'infinity'::timestamptz AS hi "
        f"FROM meters_meter WHERE member_id {member_filter} "
        "UNION ALL SELECT meter_id, member_id, COALESCE(start, '-infinity'::timestamptz), "
        f'"end" FROM meters_meteroccupancy WHERE member_id {member_filter}) '
    )


JOIN_WINDOWS = (
    "JOIN w ON w.meter_id = r.meter_id AND r.interval_start >= w.lo AND r.interval_start < w.hi "
)


def _member_occupancy_q(member_id: int) -> Q:
    """Readings (a `Reading` queryset's rows) within one member's occupancy windows."""
    past = MeterOccupancy.objects.filter(
        Q(start__isnull=True) | Q(start__lte=OuterRef("interval_start")),
        meter_id=OuterRef("meter_id"),
        member_id=member_id,
        end__gt=OuterRef("interval_start"),
    )
    return (OCCUPANCY & Q(meter__member_id=member_id)) | Q(Exists(past))


def _occupant_number() -> Case:
    """The membership number of the reading's occupant at its interval ("" for none). The past
    occupancies are looked up only for readings before the current occupancy (PostgreSQL
    evaluates CASE lazily), so a meter that never changed hands costs no subquery."""
    past = MeterOccupancy.objects.filter(
        Q(start__isnull=True) | Q(start__lte=OuterRef("interval_start")),
        meter_id=OuterRef("meter_id"),
        end__gt=OuterRef("interval_start"),
    ).values("member__membership_number")[:1]
    return Case(
        When(OCCUPANCY, then=Coalesce(F("meter__member__membership_number"), Value(""))),
        default=Coalesce(Subquery(past), Value("")),
        output_field=CharField(),
    )


def meter_occupant_ids(*, start: datetime, end: datetime) -> set[int]:
    """Members who occupied a meter at some time in [start, end) (current or past occupancy,
    meters active in the period). One query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT member_id FROM meters_meter WHERE member_id IS NOT NULL AND active_from < %s "
            "AND (member_since IS NULL OR member_since < %s) "
            "UNION SELECT member_id FROM meters_meteroccupancy "
            'WHERE "end" > %s AND (start IS NULL OR start < %s)',
            [end, end, start, end],
        )
        return {row[0] for row in cursor.fetchall()}


def meter_occupant_at(*, meter_id: int, at: datetime) -> int | None:
    """The member occupying the meter at `at` (None: nobody). At most two queries."""
    past = (
        MeterOccupancy.objects.filter(meter_id=meter_id, end__gt=at)
        .filter(Q(start__isnull=True) | Q(start__lte=at))
        .values_list("member_id", flat=True)
        .first()
    )
    if past is not None:
        return past
    meter = Meter.objects.filter(pk=meter_id).values("member_id", "member_since").first()
    if meter is None or (meter["member_since"] is not None and at < meter["member_since"]):
        return None
    return meter["member_id"]


def meter_interval_energy(
    *, meter_ids: Iterable[int], start: datetime, end: datetime
) -> dict[tuple[int, datetime], IntervalEnergy]:
    """Current validated energy per (meter, interval start) in [start, end). One query."""
    rows = Reading.objects.filter(
        meter_id__in=list(meter_ids),
        interval_start__gte=start,
        interval_start__lt=end,
        is_current=True,
    ).values_list("meter_id", "interval_start", "import_wh", "export_wh", "quality", "version")
    return {(m, t): IntervalEnergy(i, e, q, v) for m, t, i, e, q, v in rows}


def member_interval_energy(
    *, member_ids: Iterable[int], start: datetime, end: datetime
) -> dict[tuple[int, datetime], MemberIntervalEnergy]:
    """Energy per (member, interval start) in [start, end), summed over the member's meters."""
    with connection.cursor() as cursor:
        ids = list(member_ids)
        cursor.execute(
            occupancy_windows_sql("= ANY(%s)")  # noqa: S608
            + "SELECT w.member_id, r.interval_start, sum(r.import_wh), sum(r.export_wh), "
            "bool_or(r.quality IN (8, 9)) FROM meters_reading r "
            + JOIN_WINDOWS
            + "WHERE r.is_current AND r.interval_start >= %s AND r.interval_start < %s "
            "GROUP BY 1, 2",
            [ids, ids, start, end],
        )
        return {
            (member, t): MemberIntervalEnergy(int(i), int(e), bool(est))
            for member, t, i, e, est in cursor.fetchall()
        }


def interval_readings_for_anchoring(
    *, interval_start: datetime, meter_id: int | None = None
) -> list[AnchoringReading]:
    """Every current device-signed reading of one interval (or of one meter in it), ordered by
    meter id, as stored — the device signature is *not* checked here (see
    `interval_anchoring_selection`).

    Estimated values carry no device signature and are not anchored (they are not measurements).
    """
    one_meter = "AND r.meter_id = %s " if meter_id is not None else ""
    params: list = [interval_start] + ([meter_id] if meter_id is not None else [])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.meter_id, m.serial, m.address, r.seq, r.interval_start, r.interval_seconds, "
            "r.import_wh, r.export_wh, r.register_import_wh, r.register_export_wh, r.status, "
            "r.signature, r.version "
            "FROM meters_reading r JOIN meters_meter m ON m.id = r.meter_id "
            "WHERE r.is_current AND r.interval_start = %s AND r.signature IS NOT NULL "
            + one_meter
            + "ORDER BY r.meter_id",
            params,
        )
        return [
            AnchoringReading(
                meter_id=row[0],
                serial=row[1],
                address=row[2],
                seq=row[3],
                interval_start=int(row[4].timestamp()),
                interval_seconds=row[5],
                import_wh=row[6],
                export_wh=row[7],
                register_import_wh=row[8],
                register_export_wh=row[9],
                status=row[10],
                signature=bytes(row[11]),
                version=row[12],
            )
            for row in cursor.fetchall()
        ]


@dataclass(frozen=True, slots=True)
class RefusedReading:
    """A stored reading whose device signature does not verify against its stored fields."""

    reading: AnchoringReading
    reason: str


@dataclass(frozen=True, slots=True)
class AnchoringSelection:
    signed: list[AnchoringReading]  # signature verifies against the stored fields: anchorable
    refused: list[RefusedReading]  # never anchored; the caller raises a staff alert


def meter_key_addresses(*, meter_ids: Iterable[int]) -> dict[int, set[str]]:
    """Lower-case addresses of every device key each meter has had (current one included)."""
    ids = list(meter_ids)
    out: dict[int, set[str]] = {m: set() for m in ids}
    for mid, address in Meter.objects.filter(pk__in=ids).values_list("id", "address"):
        if address:
            out[mid].add(address.lower())
    rows = MeterKeyHistory.objects.filter(meter_id__in=ids).values_list("meter_id", "address")
    for mid, address in rows:
        out[mid].add(address.lower())
    return out


def reading_signature_problem(reading: AnchoringReading, *, addresses: set[str]) -> str | None:
    """Why the stored device signature does not vouch for the stored fields, or None if it does
    (it recovers, over the digest of the fields as stored now, to a key the meter has had)."""
    problem = signature_problem(reading.signature)
    if problem:
        return f"device signature malformed ({problem})"
    try:
        signer = recover_address(reading.digest, reading.signature)
    except ValueError as exc:
        return f"stored fields or signature invalid ({exc})"
    if signer.lower() not in addresses:
        return (
            "the device signature does not match the stored fields "
            f"(it recovers to {signer}, not a key of meter {reading.serial})"
        )
    return None


def interval_anchoring_selection(
    *, interval_start: datetime, checked: Callable[[AnchoringReading], bool] | None = None
) -> AnchoringSelection:
    """The interval's current device-signed readings split into those whose signature verifies
    against the stored fields (anchorable) and those it does not (changed after ingest).

    `checked(reading)` may vouch that a reading is identical to one whose signature was verified
    before (anchored with the same leaf); those skip the ECDSA recovery, so a periodic run costs
    one hash per unchanged reading.
    """
    readings = interval_readings_for_anchoring(interval_start=interval_start)
    to_check = [r for r in readings if checked is None or not checked(r)]
    keys = meter_key_addresses(meter_ids={r.meter_id for r in to_check})
    problems = {
        (r.meter_id, r.version): reading_signature_problem(r, addresses=keys[r.meter_id])
        for r in to_check
    }
    signed: list[AnchoringReading] = []
    refused: list[RefusedReading] = []
    for r in readings:
        problem = problems.get((r.meter_id, r.version))
        if problem is None:
            signed.append(r)
        else:
            refused.append(RefusedReading(reading=r, reason=problem))
    return AnchoringSelection(signed=signed, refused=refused)


def meter_interval_reading_checked(
    *, meter_id: int, interval_start: datetime
) -> tuple[AnchoringReading | None, str | None]:
    """The current device-signed reading of one meter and interval, and why its signature does
    not vouch for the stored fields (None when it does). (None, None) when there is none."""
    found = interval_readings_for_anchoring(interval_start=interval_start, meter_id=meter_id)
    if not found:
        return None, None
    keys = meter_key_addresses(meter_ids=[meter_id])
    return found[0], reading_signature_problem(found[0], addresses=keys[meter_id])


def _local_tz() -> ZoneInfo:
    return ZoneInfo(settings.COOPERATIVE_TIME_ZONE)


# Member pages computed from readings are cached per member under the version key of their
# meters' readings (apps/meters/readings/versions.py): new data → new key. The timeout only
# bounds how long entries nobody asks for again stay in the cache.
MEMBER_PAGE_CACHE_SECONDS = 15 * 60


def member_readings_version(*, member) -> str:
    """The version key of the readings this member's pages show (their meters, now and
    before). One query and one cache round trip; pass it as `version=` to the selectors
    below to read their results from the cache."""
    return meters_version_key(_member_meter_ids_qs(member))


def _cached(key: str | None, compute: Callable[[], Any]) -> Any:
    if key is None:
        return compute()
    found = cache.get(key)
    if found is None:
        found = compute()
        cache.set(key, found, MEMBER_PAGE_CACHE_SECONDS)
    return found


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _dashboard_windows(now: datetime) -> tuple[datetime, datetime]:
    """(local midnight of today in UTC, the start of the hour 7 days ago)."""
    local_now = now.astimezone(_local_tz())
    today_start = local_now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    week_start = (
        (now - timedelta(days=7)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    )
    return today_start, week_start


def member_dashboard_data(*, member, now: datetime, version: str | None = None) -> dict:
    """Series for the member dashboard (Chart.js-ready), the latest reading and totals.

    - `today`: 15-minute series from local midnight (cooperative time zone) to `now`
    - `week`: hourly series of the last 7 days
    - `latest`: the most recent current reading over the member's meters (or None)
    Two queries, whatever the number of meters, on the replica inside `replica_reads()`
    (apps/core/replica.py); none when `version` (member_readings_version) is given and the
    result for that version and these windows is cached.
    """
    today_start, week_start = _dashboard_windows(now)
    key = None
    if version is not None:
        key = f"meters:dash:{member.pk}:{version}:{_epoch(today_start)}:{_epoch(week_start)}"
    return _cached(key, lambda: _member_dashboard_data(member, now, today_start, week_start))


def _member_dashboard_data(member, now: datetime, today_start: datetime, week_start) -> dict:
    tz = _local_tz()
    with read_connection().cursor() as cursor:
        windows = occupancy_windows_sql("= %s")
        # One scan of the week over the member's meters: today per interval (today's series),
        # the days before per hour; the week's hourly series adds today's intervals up.
        cursor.execute(
            windows + "SELECT CASE WHEN r.interval_start >= %s THEN r.interval_start "  # noqa: S608
            "ELSE date_trunc('hour', r.interval_start) END, sum(r.import_wh), sum(r.export_wh) "
            "FROM meters_reading r " + JOIN_WINDOWS + "WHERE r.is_current "
            "AND r.interval_start >= %s AND r.interval_start < %s GROUP BY 1 ORDER BY 1",
            [member.pk, member.pk, today_start, min(week_start, today_start), now],
        )
        intervals = cursor.fetchall()
        cursor.execute(
            windows + "SELECT m.serial, r.interval_start, r.interval_seconds, r.import_wh, "  # noqa: S608
            "r.export_wh, r.quality FROM meters_reading r "
            + JOIN_WINDOWS
            + "JOIN meters_meter m ON m.id = r.meter_id "
            "WHERE r.is_current AND r.interval_start >= %s "
            "AND r.interval_start < %s ORDER BY r.interval_start DESC, m.serial LIMIT 1",
            [member.pk, member.pk, week_start, now],
        )
        latest_row = cursor.fetchone()

    today = [(t, i, e) for t, i, e in intervals if t >= today_start]
    hours: dict[datetime, list[int]] = {}
    for t, i, e in intervals:  # hourly rows before today, then today's intervals
        if t >= week_start:
            sums = hours.setdefault(t.replace(minute=0, second=0), [0, 0])
            sums[0] += int(i)
            sums[1] += int(e)
    week = [(t, i, e) for t, (i, e) in hours.items()]  # time order, as the rows came

    def series(rows):
        return {
            "labels": [t.isoformat() for t, _, _ in rows],
            "import_wh": [int(i) for _, i, _ in rows],
            "export_wh": [int(e) for _, _, e in rows],
        }

    latest = None
    if latest_row is not None:
        serial, start, seconds, imp, exp, quality = latest_row
        latest = {
            "meter": serial,
            "interval_start": start.isoformat(),
            "interval_end": (start + timedelta(seconds=seconds)).isoformat(),
            "import_wh": imp,
            "export_wh": exp,
            "quality": quality,
            "quality_label": Quality(quality).label if quality in Quality.values else "",
        }
    today_import = sum(int(i) for _, i, _ in today)
    today_export = sum(int(e) for _, _, e in today)
    return {
        "today": series(today),
        "week": series(week),
        "latest": latest,
        "totals": {
            "today_import_wh": today_import,
            "today_export_wh": today_export,
            "today_net_wh": today_import - today_export,
            "week_import_wh": sum(int(i) for _, i, _ in week),
            "week_export_wh": sum(int(e) for _, _, e in week),
        },
        "time_zone": str(tz),
    }


def member_site_energy(
    *, member, now: datetime, version: str | None = None
) -> dict[int | None, dict[str, int]]:
    """The member's consumption and production today (from local midnight) and over the last
    7 days per site (connection point id; None for meters at no site), in Wh. One query, none
    when `version` is given and the result is cached (as member_dashboard_data)."""
    today_start, week_start = _dashboard_windows(now)
    key = None
    if version is not None:
        key = f"meters:sites:{member.pk}:{version}:{_epoch(today_start)}:{_epoch(week_start)}"
    return _cached(key, lambda: _member_site_energy(member, now, today_start, week_start))


def _member_site_energy(
    member, now: datetime, today_start: datetime, week_start: datetime
) -> dict[int | None, dict[str, int]]:
    with read_connection().cursor() as cursor:
        cursor.execute(
            "SELECT m.connection_point_id, "
            "COALESCE(sum(r.import_wh) FILTER (WHERE r.interval_start >= %s), 0), "
            "COALESCE(sum(r.export_wh) FILTER (WHERE r.interval_start >= %s), 0), "
            "COALESCE(sum(r.import_wh), 0), COALESCE(sum(r.export_wh), 0) "
            "FROM meters_reading r JOIN meters_meter m ON m.id = r.meter_id "
            "WHERE r.is_current AND m.member_id = %s "
            "AND r.interval_start >= COALESCE(m.member_since, '-infinity'::timestamptz) "
            "AND r.interval_start >= %s AND r.interval_start < %s GROUP BY 1",
            [today_start, today_start, member.pk, min(week_start, today_start), now],
        )
        rows = cursor.fetchall()
    return {
        site: {
            "today_import_wh": int(ti),
            "today_export_wh": int(te),
            "week_import_wh": int(wi),
            "week_export_wh": int(we),
        }
        for site, ti, te, wi, we in rows
    }


def _member_meter_ids_qs(member):
    """Ids of the member's meters, now and before: one index lookup in each table (written
    as an OR of the two, PostgreSQL scanned every meter: 18 ms at 10,000 meters)."""
    past = MeterOccupancy.objects.filter(member=member).order_by().values_list("meter_id")
    return Meter.objects.filter(member=member).order_by().values_list("pk", flat=True).union(past)


def _member_meters_qs(member):
    return Meter.objects.filter(pk__in=_member_meter_ids_qs(member).values("pk"))


def member_meters(*, member) -> list[Meter]:
    """The member's meters: those they occupy now and those they occupied before (a move out,
    an exchanged meter), whose readings of their own occupancy they keep."""
    return list(_member_meters_qs(member).order_by("serial"))


def connection_point_meters(*, connection_point_id: int, at) -> list[Meter]:
    """The meters installed at a site at `at` (active then), by serial."""
    return list(
        Meter.objects.filter(connection_point_id=connection_point_id, active_from__lte=at)
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=at))
        .order_by("serial")
    )


def member_meter_get(*, member, meter_id: int) -> Meter:
    """A meter of this member (now or before), or 404 (members never see other members'
    meters)."""
    meter = _member_meters_qs(member).filter(pk=meter_id).first()
    if meter is None:
        raise Http404("No such meter.")
    return meter


def ingest_stats(*, now: datetime, silent_after: timedelta = timedelta(hours=1)) -> dict:
    """Staff ingest page: rate, lag, rejects by reason, status floods, meters not heard from."""
    from django.db.models import Min

    from apps.meters.models import Conflict, Quarantine, QuarantineReason, RawBatch

    recent = RawBatch.objects.filter(received_at__gte=now - timedelta(minutes=15))
    last_minute = recent.filter(processed_at__gte=now - timedelta(minutes=1)).aggregate(
        accepted=Sum("accepted"), messages=Sum("message_count")
    )
    last_quarter = recent.aggregate(
        accepted=Sum("accepted"), rejected=Sum("rejected"), duplicates=Sum("duplicates"),
        batches=Count("id"), last=Max("processed_at"),
    )  # fmt: skip
    oldest_pending = RawBatch.objects.filter(status=RawBatch.Status.PENDING).aggregate(
        oldest=Min("received_at"), count=Count("id")
    )
    lags = [
        (b.processed_at - b.received_at).total_seconds()  # type: ignore[operator]  # processed only
        for b in recent.filter(processed_at__isnull=False).order_by("-received_at")[:200]
    ]
    rejects = list(
        Quarantine.objects.filter(received_at__gte=now - timedelta(hours=24))
        .values("reason")
        .annotate(count=Count("id"))
        .order_by("-count")
    )
    # Devices that flooded their status topic: one `rate_limited` row per minute over the limit.
    floods = list(
        Quarantine.objects.filter(
            received_at__gte=now - timedelta(hours=24),
            reason=QuarantineReason.RATE_LIMITED,
            topic__endswith="/status",
        )
        .values("serial")
        .annotate(minutes=Count("id"), last=Max("received_at"))
        .order_by("-last", "serial")[:50]
    )
    silent = list(
        Meter.objects.filter(active_from__lte=now)
        .exclude(active_to__lt=now)
        .exclude(last_seen__gte=now - silent_after)
        .order_by("last_seen", "serial")
        .values("id", "serial", "last_seen", "member_id")[:200]
    )
    return {
        "stuck_batches": stuck_batches(now=now),
        "max_attempts": settings.METER_INGEST_MAX_ATTEMPTS,
        "rate_per_s_1min": (last_minute["accepted"] or 0) / 60,
        "messages_per_s_1min": (last_minute["messages"] or 0) / 60,
        "accepted_15min": last_quarter["accepted"] or 0,
        "rejected_15min": last_quarter["rejected"] or 0,
        "duplicates_15min": last_quarter["duplicates"] or 0,
        "batches_15min": last_quarter["batches"],
        "pending_batches": oldest_pending["count"],
        "oldest_pending_s": (now - oldest_pending["oldest"]).total_seconds()
        if oldest_pending["oldest"]
        else 0.0,
        "lag_avg_s": sum(lags) / len(lags) if lags else 0.0,
        "lag_max_s": max(lags) if lags else 0.0,
        "rejects_by_reason": rejects,
        "status_floods": floods,
        "status_limit_per_min": settings.METER_STATUS_PER_SERIAL_PER_MINUTE,
        "open_conflicts": Conflict.objects.filter(status=Conflict.Status.OPEN).count(),
        "silent_meters": silent,
        "silent_after_min": int(silent_after.total_seconds() // 60),
    }


def stuck_batches(*, now: datetime, limit: int = 100) -> list[dict]:
    """Batches that did not go through: still pending after a failed processing attempt (each
    attempt is counted before it starts, so attempts ≥ 1 on a batch pending for over a minute
    means it failed or its worker died), and batches quarantined whole (`batch_stuck`) in the
    last 7 days, with their reason. Newest first."""
    from apps.meters.models import Quarantine, QuarantineReason, RawBatch

    failing = [
        {
            "id": b["id"],
            "received_at": b["received_at"],
            "source": b["source"],
            "bridge": b["bridge"],
            "messages": b["message_count"],
            "attempts": b["attempts"],
            "state": "retrying",
            "reason": f"{b['attempts']} processing attempt(s) failed; quarantined whole after "
            f"{settings.METER_INGEST_MAX_ATTEMPTS}",
        }  # fmt: skip
        for b in RawBatch.objects.filter(
            status=RawBatch.Status.PENDING,
            attempts__gte=1,
            received_at__lt=now - timedelta(minutes=1),
        )  # fmt: skip
        .order_by("-received_at")
        .values("id", "received_at", "source", "bridge", "message_count", "attempts")[:limit]
    ]
    quarantined = [
        {
            "id": q["batch_id"],
            "received_at": q["batch__received_at"],
            "source": q["batch__source"],
            "bridge": q["batch__bridge"],
            "messages": q["batch__message_count"],
            "attempts": q["batch__attempts"],
            "state": "quarantined",
            "reason": f"{QuarantineReason.BATCH_STUCK.value}: {q['detail']}",
        }  # fmt: skip
        for q in Quarantine.objects.filter(
            reason=QuarantineReason.BATCH_STUCK,
            batch__isnull=False,
            received_at__gte=now - timedelta(days=7),
        )  # fmt: skip
        .order_by("batch_id")
        .distinct("batch_id")
        .values(
            "batch_id",
            "batch__received_at",
            "batch__source",
            "batch__bridge",
            "batch__message_count",
            "batch__attempts",
            "detail",
        )[:limit]  # fmt: skip
    ]
    rows: list[dict[str, Any]] = failing + quarantined
    rows.sort(key=lambda r: r["received_at"], reverse=True)
    return rows[:limit]


METER_PAGE_HOURS = 6  # the meter detail page: 24 intervals a page
METER_PAGE_COUNT = 8  # over the last 48 hours


def meter_readings_page(*, member, meter_id: int, now: datetime, page: int) -> dict:
    """One page of a meter's current readings for its detail page, newest first: page 1 is the
    latest METER_PAGE_HOURS up to the end of the interval holding `now`, page n the hours
    before page n − 1, over METER_PAGE_COUNT pages (48 hours). Cached under the meter's
    readings version: one cache round trip when nothing new landed, else one query more."""
    page = min(max(page, 1), METER_PAGE_COUNT)
    epoch = int(now.timestamp())
    end = datetime.fromtimestamp(epoch - epoch % 900 + 900, tz=UTC)
    end -= timedelta(hours=METER_PAGE_HOURS * (page - 1))
    key = f"meters:detail:{member.pk}:{meter_id}:{meters_version_key([meter_id])}:{_epoch(end)}"
    rows = _cached(
        key,
        lambda: member_recent_readings(
            member=member, now=end, hours=METER_PAGE_HOURS, meter_id=meter_id
        ),
    )
    return {
        "rows": rows,
        "page": page,
        "pages": METER_PAGE_COUNT,
        "start": end - timedelta(hours=METER_PAGE_HOURS),
        "end": end,
        "newer": page - 1 if page > 1 else None,
        "older": page + 1 if page < METER_PAGE_COUNT else None,
    }


def member_recent_readings(
    *, member, now: datetime, hours: int = 24, meter_id: int | None = None
) -> list[tuple]:
    """The member's current readings of the last `hours`, newest first (meters page), of every
    meter or of one (`meter_id`, the meter detail page: only its rows are read, so a member with
    several meters sees all of that meter's intervals, never a share of the row limit)."""
    one_meter = "AND m.id = %s " if meter_id is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            occupancy_windows_sql("= %s")  # noqa: S608
            + "SELECT m.serial, r.interval_start, r.import_wh, r.export_wh, r.quality, "
            "r.version, r.signature IS NOT NULL FROM meters_reading r "
            + JOIN_WINDOWS
            + "JOIN meters_meter m ON m.id = r.meter_id "
            "WHERE r.is_current AND r.interval_start >= %s "
            + one_meter
            + "AND r.interval_start < %s ORDER BY r.interval_start DESC, m.serial LIMIT 500",
            [member.pk, member.pk, now - timedelta(hours=hours)]
            + ([meter_id] if meter_id is not None else [])
            + [now],
        )
        return cursor.fetchall()


@dataclass(frozen=True, slots=True)
class LatestRegisters:
    """A meter's latest current reading: where a device (or the simulator) continues from."""

    interval_start: datetime
    register_import_wh: int
    register_export_wh: int


def meter_latest_registers(*, meter_ids: Iterable[int]) -> dict[int, LatestRegisters]:
    """Meter id -> its latest current reading's interval start and registers (meters without
    readings are absent). One query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (meter_id) meter_id, interval_start, register_import_wh, "
            "register_export_wh FROM meters_reading WHERE is_current AND meter_id = ANY(%s) "
            "ORDER BY meter_id, interval_start DESC",
            [list(meter_ids)],
        )
        return {m: LatestRegisters(t, ri, re_) for m, t, ri, re_ in cursor.fetchall()}


# --- readings for other apps -------------------------------------------------------------------


class MeterInterval(NamedTuple):
    interval_start: datetime
    version: int
    import_wh: int
    export_wh: int
    quality: int


def meter_intervals(
    *, meter_id: int, start: datetime, end: datetime, exclude_qualities: Iterable[int] = ()
) -> list[MeterInterval]:
    """Current readings of one meter in [start, end), oldest first, without the readings whose
    quality is in `exclude_qualities`. One query."""
    qs = Reading.objects.filter(
        meter_id=meter_id, is_current=True, interval_start__gte=start, interval_start__lt=end
    )
    excluded = list(exclude_qualities)
    if excluded:
        qs = qs.exclude(quality__in=excluded)
    rows = qs.order_by("interval_start").values_list(
        "interval_start", "version", "import_wh", "export_wh", "quality"
    )
    return [MeterInterval(*row) for row in rows]


def member_hourly_import(
    *,
    start: datetime,
    end: datetime,
    member_ids: Iterable[int] | None = None,
    exclude_qualities: Iterable[int] = (),
) -> dict[int, dict[datetime, int]]:
    """Imported Wh per member (over the member's meters) per UTC hour start in [start, end),
    without the readings whose quality is in `exclude_qualities`; all members with meters when
    `member_ids` is None. Hours without readings are absent. One query."""
    return dict(
        member_hourly_import_iter(
            start=start, end=end, member_ids=member_ids, exclude_qualities=exclude_qualities
        )
    )


def member_hourly_import_iter(
    *,
    start: datetime,
    end: datetime,
    member_ids: Iterable[int] | None = None,
    exclude_qualities: Iterable[int] = (),
    chunk_size: int = 2000,
) -> Iterator[tuple[int, dict[datetime, int]]]:
    """The figures of :func:`member_hourly_import`, one member at a time in member id order:
    `(member_id, {hour start: Wh})`, read from a server-side cursor in chunks of `chunk_size`
    member-hours, so memory holds one member's hours and one chunk, never members × hours.
    One query."""
    excluded = [int(q) for q in exclude_qualities]
    ids = list(member_ids) if member_ids is not None else None
    windows = occupancy_windows_sql("= ANY(%s)" if ids is not None else "IS NOT NULL")
    current: int | None = None
    hours: dict[datetime, int] = {}
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            windows  # noqa: S608
            + "SELECT w.member_id, date_trunc('hour', r.interval_start AT TIME ZONE 'UTC'), "
            "sum(r.import_wh) FROM meters_reading r "
            + JOIN_WINDOWS
            + "WHERE r.is_current AND r.interval_start >= %s AND r.interval_start < %s "
            "AND NOT (r.quality = ANY(%s)) GROUP BY 1, 2 ORDER BY 1, 2",
            ([ids, ids] if ids is not None else []) + [start, end, excluded],
        )
        while rows := cursor.fetchmany(chunk_size):
            for member_id, hour, wh in rows:
                if member_id != current:
                    if current is not None:
                        yield current, hours
                    current, hours = member_id, {}
                hours[hour.replace(tzinfo=UTC)] = int(wh or 0)
    if current is not None:
        yield current, hours


class IntervalTotal(NamedTuple):
    interval_start: datetime
    import_wh: int
    export_wh: int


def interval_totals(
    *,
    start: datetime,
    end: datetime,
    meter_serial: str | None = None,
    connection_point_ids: Iterable[int] | None = None,
) -> list[IntervalTotal]:
    """Wh summed over meters per interval start in [start, end), oldest first: every meter, one
    meter (`meter_serial`) or the meters at `connection_point_ids` (a lazy queryset of ids is
    embedded as a subquery, so the call stays one query). Intervals without readings are
    absent."""
    qs = Reading.objects.filter(is_current=True, interval_start__gte=start, interval_start__lt=end)
    if meter_serial is not None:
        qs = qs.filter(meter__serial=meter_serial)
    if connection_point_ids is not None:
        qs = qs.filter(meter__connection_point_id__in=connection_point_ids)
    rows = (
        qs.values("interval_start")
        .annotate(i=Sum("import_wh"), e=Sum("export_wh"))
        .order_by("interval_start")
        .values_list("interval_start", "i", "e")
    )
    return [IntervalTotal(t, int(i or 0), int(e or 0)) for t, i, e in rows]


def meter_last_interval_starts(*, meter_ids: Iterable[int], since: datetime) -> dict[int, datetime]:
    """The start of each meter's newest current reading at or after `since` (meters without one
    are absent). One query."""
    return dict(
        Reading.objects.filter(
            meter_id__in=list(meter_ids), is_current=True, interval_start__gte=since
        )
        .values("meter_id")
        .annotate(last=Max("interval_start"))
        .values_list("meter_id", "last")
    )


def readings_last_ingested(*, start: datetime, end: datetime, after: datetime) -> datetime | None:
    """When the newest current reading of [start, end) that arrived after `after` was stored
    (a correction is a new version, a late first reading a new row), or None. One query."""
    return Reading.objects.filter(
        is_current=True, interval_start__gte=start, interval_start__lt=end, ingested_at__gt=after
    ).aggregate(latest=Max("ingested_at"))["latest"]


class QualityCounts(NamedTuple):
    present: int  # current readings
    edited: int  # quality 7
    estimated: int  # quality 8 or 9
    questionable: int  # quality 10


def meter_quality_counts(*, start: datetime, end: datetime) -> dict[int, QualityCounts]:
    """Per meter id: how many current readings of [start, end) there are, by quality. Meters
    without readings are absent. One query."""
    rows = (
        Reading.objects.filter(is_current=True, interval_start__gte=start, interval_start__lt=end)
        .values("meter_id")
        .annotate(
            present=Count("*"),
            edited=Count("quality", filter=Q(quality=Quality.EDITED)),
            estimated=Count("quality", filter=Q(quality__in=ESTIMATED_QUALITIES)),
            questionable=Count("quality", filter=Q(quality=Quality.QUESTIONABLE)),
        )
        .values_list("meter_id", "present", "edited", "estimated", "questionable")
    )
    return {row[0]: QualityCounts(*row[1:]) for row in rows}


class ReportInterval(NamedTuple):
    serial: str
    membership_number: str  # "" for a meter without a member
    interval_start: datetime
    interval_seconds: int
    import_wh: int
    export_wh: int
    quality: int
    version: int
    device_signed: bool


def interval_readings_iter(
    *, start: datetime, end: datetime, member_id: int | None = None, chunk_size: int = 5000
) -> Iterator[ReportInterval]:
    """Every current reading of [start, end) (optionally of one member's meters), ordered by
    meter serial then interval start, streamed from a server-side cursor in chunks (one query;
    reports over a year of a whole cooperative never hold the rows twice)."""
    qs = Reading.objects.filter(is_current=True, interval_start__gte=start, interval_start__lt=end)
    if member_id:
        qs = qs.filter(_member_occupancy_q(member_id))
    signed = ExpressionWrapper(Q(signature__isnull=False), output_field=BooleanField())
    rows = (
        qs.order_by("meter__serial", "interval_start")
        .annotate(number=_occupant_number(), signed=signed)
        .values_list(
            "meter__serial",
            "number",
            "interval_start",
            "interval_seconds",
            "import_wh",
            "export_wh",
            "quality",
            "version",
            "signed",
        )  # fmt: skip
    )
    for row in rows.iterator(chunk_size=chunk_size):
        yield ReportInterval(*row)


READING_HISTORY_COLUMNS = (
    "meter",
    "interval_start",
    "interval_seconds",
    "import_wh",
    "export_wh",
    "quality",
    "version",
    "is_current",
    "reason",
)


class ReadingHistoryRow(NamedTuple):
    """One stored version of one interval (fields in `READING_HISTORY_COLUMNS` order)."""

    meter: str  # serial
    interval_start: datetime
    interval_seconds: int
    import_wh: int
    export_wh: int
    quality: int
    version: int
    is_current: bool
    reason: str


def member_reading_history(*, member_id: int) -> list[ReadingHistoryRow]:
    """Every version of every reading of the member's meters (corrections included), ordered by
    meter serial, interval start, version: what a member's data export holds. One query."""
    rows = (
        Reading.objects.filter(_member_occupancy_q(member_id))
        .order_by("meter__serial", "interval_start", "version")
        .values_list(
            "meter__serial",
            "interval_start",
            "interval_seconds",
            "import_wh",
            "export_wh",
            "quality",
            "version",
            "is_current",
            "reason",
        )  # fmt: skip
    )
    return [ReadingHistoryRow(*row) for row in rows]


class MeterRegistryEntry(NamedTuple):
    pk: int
    serial: str
    membership_number: str  # "" for a meter without a member
    active_from: datetime
    active_to: datetime | None
    interval_seconds: int


def meter_registry() -> list[MeterRegistryEntry]:
    """Every meter with its member's number and active period, by id (one query)."""
    rows = (
        Meter.objects.order_by("pk")
        .annotate(number=Coalesce("member__membership_number", Value("")))
        .values_list(
            "pk", "serial", "number", "active_from", "active_to", "interval_seconds"
        )  # fmt: skip
    )
    return [MeterRegistryEntry(*row) for row in rows]


def gateway_for_token(*, token: str) -> str | None:
    """The name of the HTTP gateway holding `token` (not revoked), or None."""
    if not token:
        return None
    digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
    return (
        GatewayToken.objects.filter(token_sha256=digest, revoked_at__isnull=True)
        .values_list("name", flat=True)
        .first()
    )


#: A raw batch still pending after this long is "stuck" on the staff home (the beat's sweep
#: re-enqueues pending batches every 30 s).
BATCH_STUCK_AFTER_S = 300


def staff_queue_counts(*, now: datetime) -> dict[str, object]:
    """The staff home's metering work: open quarantine by reason, open conflicts, stuck
    batches."""
    from apps.meters.models import Conflict, Quarantine, RawBatch

    by_reason = list(
        Quarantine.objects.filter(status=Quarantine.Status.OPEN)
        .values("reason")
        .annotate(count=Count("id"))
        .order_by("-count", "reason")
    )
    return {
        "quarantine_by_reason": by_reason,
        "quarantine_open": sum(row["count"] for row in by_reason),
        "conflicts_open": Conflict.objects.filter(status=Conflict.Status.OPEN).count(),
        "batches_stuck": RawBatch.objects.filter(
            status=RawBatch.Status.PENDING,
            received_at__lt=now - timedelta(seconds=BATCH_STUCK_AFTER_S),
        ).count(),
    }


def meters_silent(*, now: datetime, silent_after: timedelta) -> list[Meter]:
    """Members' active meters heard from before, but not within `silent_after` of `now`."""
    return list(
        Meter.objects.filter(
            member__isnull=False,
            active_from__lte=now,
            last_seen__isnull=False,
            last_seen__lt=now - silent_after,
        )
        .exclude(active_to__lt=now)
        .select_related("member__user")
        .order_by("pk")
    )
