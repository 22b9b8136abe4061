"""Storage of readings and raw messages (PostgreSQL, partitioned by time: `partitions`).

Everything here speaks Unix seconds and typed records, never Django model instances, because it
runs per reading at ingest rates:

- `ReadingRow` — one version of one interval as it is written (COPY column order);
- `CurrentReading` — what is stored as the current version of an interval (for VEE and
  duplicate/conflict detection);
- raw messages go in with binary COPY (`raw_messages_write`) and come back per batch
  (`raw_messages_of_batch`);
- `readings_insert` writes rows as current versions, skipping keys another worker took
  meanwhile; `readings_supersede` retires the versions they replace.

Only the meters app reads these tables; every other app goes through `apps.meters.selectors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import psycopg
from django.db import connection, transaction


class ReadingRow(NamedTuple):
    """One reading version as written (the order is the COPY column order)."""

    meter_id: int
    interval_start: int  # Unix seconds, UTC
    version: int
    interval_seconds: int
    import_wh: int
    export_wh: int
    register_import_wh: int
    register_export_wh: int
    status: int  # device status flags (signed)
    seq: int | None  # None for estimates
    signature: bytes | None  # None for estimates and unsigned backfill
    quality: int  # ESPI ReadingQuality (apps.meters.models.Quality)
    flags: int  # VEE rule flags (apps.meters.vee.Flag)
    reason: str
    raw_message_id: int | None


class CurrentReading(NamedTuple):
    """The stored current version of one interval."""

    version: int
    import_wh: int
    export_wh: int
    register_import_wh: int
    register_export_wh: int
    quality: int
    seq: int | None


def pg_cursor() -> psycopg.Cursor:
    """A server-side-binding psycopg cursor on Django's connection (same transaction): arrays
    travel as typed parameters instead of being escaped into the SQL text by Django's client-side
    cursor, which costs more than the query at ingest rates."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def raw_messages_write(
    *, batch_id: int, received_at: datetime, messages: Sequence[tuple[str, bytes]]
) -> None:
    """COPY (topic, payload) messages of one batch into the raw message table, as received."""
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY meters_rawmessage (received_at, batch_id, topic, payload) FROM STDIN "
            "(FORMAT BINARY)"  # ~3x cheaper per row than text COPY (no escaping)
        ) as copy,
    ):
        copy.set_types(["timestamptz", "int8", "text", "bytea"])
        for topic, payload in messages:
            copy.write_row((received_at, batch_id, topic[:300], payload))


def raw_messages_of_batch(*, batch_id: int, received_at: datetime) -> list[tuple[int, str, bytes]]:
    """(raw message id, topic, payload bytes) of one batch, in arrival order."""
    with pg_cursor() as cursor:
        cursor.execute(
            "SELECT id, topic, payload FROM meters_rawmessage "
            "WHERE received_at = %s AND batch_id = %s ORDER BY id",
            [received_at, batch_id],
            binary=True,  # payloads as bytes, no hex decoding
        )
        return cursor.fetchall()


def current_readings(keys: set[tuple[int, int]]) -> dict[tuple[int, int], CurrentReading]:
    """Current readings for (meter_id, unix start) keys: one query (binary array parameters,
    Unix seconds both ways)."""
    if not keys:
        return {}
    meter_ids = [k[0] for k in keys]
    starts = [k[1] for k in keys]
    with pg_cursor() as cursor:
        cursor.execute(
            "SELECT r.meter_id, extract(epoch FROM r.interval_start)::bigint, r.version, "
            "r.import_wh, r.export_wh, r.register_import_wh, r.register_export_wh, r.quality, "
            "r.seq "
            "FROM meters_reading r JOIN unnest(%b::bigint[], %b::bigint[]) AS k(m, t) "
            "ON r.meter_id = k.m AND r.interval_start = to_timestamp(k.t) "
            "WHERE r.is_current AND r.interval_start BETWEEN to_timestamp(%b) AND to_timestamp(%b)",
            [meter_ids, starts, min(starts), max(starts)],
        )
        return {(row[0], row[1]): CurrentReading(*row[2:]) for row in cursor.fetchall()}


def readings_supersede(keys: Iterable[tuple[int, int, int]]) -> None:
    """Mark the (meter_id, unix start, version) versions as no longer current (one query)."""
    keys = list(keys)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE meters_reading r SET is_current = false "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::smallint[]) AS k(m, t, v) "
            "WHERE r.meter_id = k.m AND r.interval_start = to_timestamp(k.t) "
            "AND r.version = k.v AND r.is_current",
            [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]],
        )


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


def readings_insert(rows: Sequence[ReadingRow], source: str) -> set[tuple[int, int]]:
    """Insert reading rows as current versions; return the (meter_id, unix start) keys that
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
        with transaction.atomic(), pg_cursor() as cursor, cursor.copy(_COPY) as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                t = row.interval_start
                start = starts.get(t) or starts.setdefault(t, from_unix(t))
                copy.write_row((row.meter_id, start, *row[2:], source))
        return {(row.meter_id, row.interval_start) for row in rows}
    except psycopg.errors.UniqueViolation:
        pass  # rolled back to the savepoint: some key was written concurrently
    with pg_cursor() as cursor:
        cursor.execute(_STAGE)
        with cursor.copy("COPY meters_reading_stage FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_STAGE_TYPES)
            for row in rows:
                copy.write_row(row)
        cursor.execute(_INSERT, [source])
        written = set(cursor.fetchall())
        cursor.execute("DELETE FROM meters_reading_stage")  # clean even inside an outer atomic
        return written
