"""Time partitions of the reading tables (PostgreSQL declarative partitioning).

`meters_reading` is partitioned by month of `interval_start` (10,000 meters × 96 intervals × 31
days ≈ 30 M rows per partition), `meters_rawmessage` by day of `received_at` (raw payloads are
the bulk of the bytes and are dropped whole when they age out), the per-meter hourly/daily
rollups by month of `period_start` (10,000 meters ≈ 7.7 M rows a month). Partitions are created
ahead by the beat task `apps.meters.tasks.partitions_create_ahead` and, as a safety net, on
demand before every write that could touch a missing one (cached per process, so the check is
free).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import connection as default_connection

# parent table -> granularity
PARTITIONED_TABLES = {
    "meters_reading": "month",
    "meters_rawmessage": "day",
    "meters_meterrollup": "month",
}

_known: set[str] = set()


def _floor(moment: datetime, granularity: str) -> datetime:
    moment = moment.astimezone(UTC)
    if granularity == "month":
        return datetime(moment.year, moment.month, 1, tzinfo=UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _next(start: datetime, granularity: str) -> datetime:
    if granularity == "month":
        return datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)
    return start + timedelta(days=1)


def partition_name(table: str, start: datetime) -> str:
    if PARTITIONED_TABLES[table] == "month":
        return f"{table}_y{start:%Y}m{start:%m}"
    return f"{table}_y{start:%Y}m{start:%m}d{start:%d}"


def partition_ranges(
    table: str, start: datetime, end: datetime
) -> Iterable[tuple[str, datetime, datetime]]:
    """(name, lower, upper) of every partition of `table` overlapping [start, end]."""
    granularity = PARTITIONED_TABLES[table]
    current = _floor(start, granularity)
    while current <= end:
        upper = _next(current, granularity)
        yield partition_name(table, current), current, upper
        current = upper


def partitions_ensure(
    *, start: datetime, end: datetime, tables: Iterable[str] | None = None, connection=None
) -> list[str]:
    """Create the missing partitions of `tables` covering [start, end]; return the created names.

    Safe under concurrency: creation is serialised with a transaction-level advisory lock and
    `CREATE TABLE IF NOT EXISTS`. Cheap when nothing is missing (process-local cache).
    """
    conn = connection or default_connection
    wanted = [
        rng
        for table in (tables or PARTITIONED_TABLES)
        for rng in ((table, *r) for r in partition_ranges(table, start, end))
        if rng[1] not in _known
    ]
    if not wanted:
        return []
    created: list[str] = []
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(%s)",
            [list(PARTITIONED_TABLES)],
        )
        existing = {row[0] for row in cursor.fetchall()}
        missing = [w for w in wanted if w[1] not in existing]
        if missing:
            with conn.cursor() as lock_cursor:
                lock_cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x6D657465])
            for table, name, lower, upper in missing:
                cursor.execute(
                    f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}" '  # noqa: S608
                    "FOR VALUES FROM (%s) TO (%s)",
                    [lower, upper],
                )
                created.append(name)
    if conn.in_atomic_block:
        # Only trust the cache once the DDL is committed.
        conn.on_commit(lambda: _known.update(w[1] for w in wanted))
    else:
        _known.update(w[1] for w in wanted)
    return created


def partitions_forget() -> None:
    """Clear the process cache (tests that drop and recreate the database)."""
    _known.clear()
