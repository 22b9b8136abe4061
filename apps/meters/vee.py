"""VEE — validation, estimation and editing of interval readings (pure; no Django import).

One function per rule of docs/domain.md, "VEE" (MDM practice: Oracle MDM, Itron, GISCE). Each rule
returns the flags it raises; `validate` combines them into an ESPI quality code (Green Button /
NAESB REQ.21 ReadingQuality: 0 valid, 7 edited, 8 estimated (reference day), 9 interpolated, 10
questionable). Input problems that make a reading unusable (absurd values, future timestamps,
misaligned intervals) are returned as a `reject` reason instead: the reading goes to quarantine.
Estimation (linear interpolation for short gaps, same-weekday profile for long ones) is flagged
estimated, never measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from enum import IntFlag
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

# ESPI ReadingQuality codes
VALID = 0
EDITED = 7
ESTIMATED = 8
INTERPOLATED = 9
QUESTIONABLE = 10

SHORT_GAP_INTERVALS = 4  # ≤ 1 hour of 15-minute intervals: interpolate; longer: profile
CLOCK_DRIFT_TOLERANCE_S = 120  # a reading may end at most this far in the future (meter clock)
SPIKE_FACTOR = 10  # value > 10 × max(neighbour, typical) and above the floor below: a spike
SPIKE_FLOOR_WH = 500
HIGH_FACTOR = 4  # value > 4 × the meter's typical (p95) interval value: high vs history
ABSURD_FACTOR = 100  # value > 100 × physical capacity: an absurd value, rejected
CAPACITY_TOLERANCE = 1.1
REGISTER_TOLERANCE_WH = 1
REGISTER_ROLLOVER_AT = 10**9  # registers wrap at 10^9 Wh (9-digit kWh counters ×1000)


class Flag(IntFlag):
    NONE = 0
    SPIKE = 1 << 0
    HIGH = 1 << 1
    LOW = 1 << 2
    ZERO = 1 << 3
    REGISTER_ROLLOVER = 1 << 4
    REVERSE_FLOW = 1 << 5
    OVER_CAPACITY = 1 << 6
    OUTSIDE_ACTIVE = 1 << 7
    CLOCK_DRIFT = 1 << 8
    INTERVAL_MISMATCH = 1 << 9
    REGISTER_MISMATCH = 1 << 10
    DST_DAY = 1 << 11
    ESTIMATED = 1 << 12
    REPLACES_ESTIMATE = 1 << 13
    CONFLICT = 1 << 14
    METER_EXCHANGE = 1 << 15  # the interval of a meter exchange (registers checked across it)


# Flags that only inform; the value itself is fine (quality stays valid).
INFORMATIONAL = (
    Flag.REGISTER_ROLLOVER
    | Flag.DST_DAY
    | Flag.REPLACES_ESTIMATE
    | Flag.CONFLICT
    | Flag.METER_EXCHANGE
)
_NOT_INFORMATIONAL = ~int(INFORMATIONAL)


# Immutable value types as NamedTuples: built for every reading at ingest rates, where a frozen
# dataclass's __init__ (object.__setattr__ per field) costs several times more.
class MeterSpec(NamedTuple):
    direction: str  # "import" | "export" | "bidirectional"
    interval_seconds: int
    capacity_w: int
    multiplier: int = 1
    active_from: int | None = None  # Unix seconds
    active_to: int | None = None
    typical_wh: int | None = None  # p95 of the meter's recent interval values (history)


class Candidate(NamedTuple):
    interval_start: int  # Unix seconds UTC
    interval_seconds: int
    import_wh: int
    export_wh: int
    register_import_wh: int
    register_export_wh: int


class Previous(NamedTuple):
    """The meter's current reading of the interval just before (for spike/register rules)."""

    interval_start: int
    import_wh: int
    export_wh: int
    register_import_wh: int
    register_export_wh: int


class Verdict(NamedTuple):
    quality: int
    flags: int
    reject: str | None = None  # a QuarantineReason value
    detail: str = ""


def capacity_wh(meter: MeterSpec, interval_seconds: int) -> int:
    return meter.capacity_w * interval_seconds // 3600


# --- rules: each returns flags (or a reject reason) --------------------------------------


def rule_negative(c: Candidate) -> str | None:
    if min(c.import_wh, c.export_wh, c.register_import_wh, c.register_export_wh) < 0:
        return "negative"
    return None


def rule_absurd(c: Candidate, m: MeterSpec) -> str | None:
    limit = max(capacity_wh(m, c.interval_seconds), 1) * ABSURD_FACTOR * m.multiplier
    return "out_of_range" if max(c.import_wh, c.export_wh) > limit else None


def rule_alignment(c: Candidate) -> str | None:
    if c.interval_seconds <= 0 or c.interval_start % c.interval_seconds:
        return "misaligned"
    return None


def rule_future(c: Candidate, now: int) -> str | None:
    end = c.interval_start + c.interval_seconds
    return "future" if end > now + CLOCK_DRIFT_TOLERANCE_S else None


def rule_clock_drift(c: Candidate, now: int) -> Flag:
    """The interval has not ended yet by our clock (but within tolerance): the meter runs fast."""
    return Flag.CLOCK_DRIFT if c.interval_start + c.interval_seconds > now else Flag.NONE


def rule_interval_mismatch(c: Candidate, m: MeterSpec) -> Flag:
    return Flag.INTERVAL_MISMATCH if c.interval_seconds != m.interval_seconds else Flag.NONE


def rule_reverse_flow(c: Candidate, m: MeterSpec) -> Flag:
    if m.direction == "import" and c.export_wh > 0:
        return Flag.REVERSE_FLOW
    if m.direction == "export" and c.import_wh > 0:
        return Flag.REVERSE_FLOW
    return Flag.NONE


def rule_over_capacity(c: Candidate, m: MeterSpec) -> Flag:
    limit = capacity_wh(m, c.interval_seconds) * CAPACITY_TOLERANCE
    return Flag.OVER_CAPACITY if max(c.import_wh, c.export_wh) > limit else Flag.NONE


def rule_active_period(c: Candidate, m: MeterSpec) -> Flag:
    if m.active_from is not None and c.interval_start < m.active_from:
        return Flag.OUTSIDE_ACTIVE
    if m.active_to is not None and c.interval_start >= m.active_to:
        return Flag.OUTSIDE_ACTIVE
    return Flag.NONE


def rule_spike(c: Candidate, prev: Previous | None, m: MeterSpec) -> Flag:
    value = max(c.import_wh, c.export_wh)
    reference = max((max(prev.import_wh, prev.export_wh) if prev else 0), m.typical_wh or 0)
    if prev is None and m.typical_wh is None:
        return Flag.NONE
    return Flag.SPIKE if value > SPIKE_FLOOR_WH and value > SPIKE_FACTOR * reference else Flag.NONE


def rule_high_low(c: Candidate, m: MeterSpec) -> Flag:
    """High against the meter's own history; zero usage on a meter that normally consumes."""
    if not m.typical_wh:
        return Flag.NONE
    value = max(c.import_wh, c.export_wh)
    if value > HIGH_FACTOR * m.typical_wh:
        return Flag.HIGH
    if c.import_wh == 0 and c.export_wh == 0 and m.direction != "export":
        return Flag.ZERO
    return Flag.NONE


def rule_registers(c: Candidate, prev: Previous | None) -> Flag:
    """Interval sum vs register: register[t] − register[t−1] must equal the interval value.

    A register that goes down by about the rollover modulus wrapped (a rollover: fine, flagged).
    """
    if prev is None or prev.interval_start + c.interval_seconds != c.interval_start:
        return Flag.NONE
    flags = Flag.NONE
    for now_reg, prev_reg, value in (
        (c.register_import_wh, prev.register_import_wh, c.import_wh),
        (c.register_export_wh, prev.register_export_wh, c.export_wh),
    ):
        delta = now_reg - prev_reg
        if delta < 0 and prev_reg > REGISTER_ROLLOVER_AT // 2:
            delta += REGISTER_ROLLOVER_AT
            flags |= Flag.REGISTER_ROLLOVER
        if abs(delta - value) > REGISTER_TOLERANCE_WH:
            flags |= Flag.REGISTER_MISMATCH
    return flags


def intervals_in_local_day(day: date, tz: str, interval_seconds: int = 900) -> int:
    """Quarter-hours in a local calendar day: 96, or 92/100 on DST change days."""
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(UTC)
    return int((end - start).total_seconds()) // interval_seconds


@lru_cache(maxsize=4096)
def _dst_flag(interval_start: int, interval_seconds: int, tz: str) -> Flag:
    # Readings of one batch share a few interval starts: computed once per start, not per reading.
    local_day = datetime.fromtimestamp(interval_start, tz=ZoneInfo(tz)).date()
    count = intervals_in_local_day(local_day, tz, interval_seconds)
    return Flag.DST_DAY if count != 86400 // interval_seconds else Flag.NONE


def rule_dst_day(c: Candidate, tz: str) -> Flag:
    return _dst_flag(c.interval_start, c.interval_seconds, tz)


def validate(
    c: Candidate, m: MeterSpec, prev: Previous | None, *, now: int, tz: str = "Europe/Berlin"
) -> Verdict:
    """Run every rule; rejects first, then flags → quality (questionable if any flag is not
    purely informational)."""
    for reject in (rule_negative(c), rule_alignment(c), rule_future(c, now), rule_absurd(c, m)):
        if reject:
            return Verdict(quality=QUESTIONABLE, flags=0, reject=reject, detail=reject)
    # int(): IntFlag's own `|` runs in Python and costs more than the rules at ingest rates.
    flags = (
        int(rule_clock_drift(c, now))
        | int(rule_interval_mismatch(c, m))
        | int(rule_reverse_flow(c, m))
        | int(rule_over_capacity(c, m))
        | int(rule_active_period(c, m))
        | int(rule_spike(c, prev, m))
        | int(rule_high_low(c, m))
        | int(rule_registers(c, prev))
        | int(rule_dst_day(c, tz))
    )
    quality = QUESTIONABLE if flags & _NOT_INFORMATIONAL else VALID
    return Verdict(quality=quality, flags=flags)


# --- duplicates / conflicts ----------------------------------------------------------------


def compare_existing(
    existing_values: tuple[int, int, int, int], existing_quality: int, c: Candidate
) -> str:
    """'duplicate' (same values), 'replace_estimate' (existing is an estimate), or 'conflict'."""
    values = (c.import_wh, c.export_wh, c.register_import_wh, c.register_export_wh)
    if existing_values == values:
        return "duplicate"
    if existing_quality in (ESTIMATED, INTERPOLATED):
        return "replace_estimate"
    return "conflict"


# --- gaps and estimation -------------------------------------------------------------------


def find_gaps(starts: Sequence[int], interval_seconds: int) -> list[list[int]]:
    """Runs of missing interval starts between the given (sorted) present starts."""
    gaps = []
    for a, b in zip(starts, starts[1:], strict=False):
        if b - a > interval_seconds:
            gaps.append(list(range(a + interval_seconds, b, interval_seconds)))
    return gaps


def interpolate(before: int, after: int, n: int) -> list[int]:
    """Linear interpolation of `n` missing values between two known ones (integer Wh)."""
    return [round(before + (after - before) * (i + 1) / (n + 1)) for i in range(n)]


def estimate_gap(
    gap: Sequence[int],
    before: tuple[int, int],
    after: tuple[int, int],
    reference: dict[int, tuple[int, int]],
) -> list[tuple[int, int, int, int]]:
    """Estimates for a gap → [(interval_start, import_wh, export_wh, quality)].

    Short gaps (≤ SHORT_GAP_INTERVALS): linear interpolation (quality 9). Long gaps: the same
    interval on the same weekday one week earlier from `reference` (quality 8); if the reference
    day is missing too, interpolation.
    """
    n = len(gap)
    if n <= SHORT_GAP_INTERVALS:
        imports = interpolate(before[0], after[0], n)
        exports = interpolate(before[1], after[1], n)
        return [(t, i, e, INTERPOLATED) for t, i, e in zip(gap, imports, exports, strict=True)]
    week = 7 * 86400
    out = []
    imports = interpolate(before[0], after[0], n)
    exports = interpolate(before[1], after[1], n)
    for k, t in enumerate(gap):
        ref = reference.get(t - week)
        if ref is not None:
            out.append((t, ref[0], ref[1], ESTIMATED))
        else:
            out.append((t, imports[k], exports[k], INTERPOLATED))
    return out
