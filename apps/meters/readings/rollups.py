"""Hourly/daily rollups per meter and per transformer/feeder, maintained incrementally.

Writers (ingest, backfill, estimation, corrections) only record the hours they touched in
`meters_rollupdirtyhour` (one tiny upsert per batch). `rollups_refresh` then recomputes exactly
those hours — per meter from the current readings, per day from the hours, per transformer
and feeder from the meter hours — like an invalidation log of a continuous aggregate.
Nothing is rescanned that did not change, and ingest never contends on the hot per-transformer rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from apps.meters.readings.partitions import partitions_ensure
from apps.meters.readings.versions import readings_changed

_REFRESH_METER_HOURS = """
DELETE FROM meters_meterrollup
 WHERE granularity = 'hour' AND period_start = ANY(%(hours)s::timestamptz[]);
INSERT INTO meters_meterrollup
    (meter_id, granularity, period_start, import_wh, export_wh, intervals, estimated_intervals)
SELECT meter_id, 'hour', date_trunc('hour', interval_start), sum(import_wh), sum(export_wh),
       count(*), count(*) FILTER (WHERE quality IN (8, 9))
  FROM meters_reading
 WHERE is_current
   AND interval_start >= %(lo)s AND interval_start < %(hi)s
   AND date_trunc('hour', interval_start) = ANY(%(hours)s::timestamptz[])
 GROUP BY 1, 3;
"""

_REFRESH_METER_DAYS = """
DELETE FROM meters_meterrollup
 WHERE granularity = 'day' AND period_start = ANY(%(days)s::timestamptz[]);
INSERT INTO meters_meterrollup
    (meter_id, granularity, period_start, import_wh, export_wh, intervals, estimated_intervals)
SELECT meter_id, 'day', date_trunc('day', period_start, 'UTC'), sum(import_wh), sum(export_wh),
       sum(intervals), sum(estimated_intervals)
  FROM meters_meterrollup
 WHERE granularity = 'hour'
   AND period_start >= %(day_lo)s AND period_start < %(day_hi)s
   AND date_trunc('day', period_start, 'UTC') = ANY(%(days)s::timestamptz[])
 GROUP BY 1, 3;
"""

_REFRESH_GRID = """
DELETE FROM meters_gridrollup
 WHERE (granularity = 'hour' AND period_start = ANY(%(hours)s::timestamptz[]))
    OR (granularity = 'day' AND period_start = ANY(%(days)s::timestamptz[]));
INSERT INTO meters_gridrollup
    (level, node_id, granularity, period_start, import_wh, export_wh, meters)
SELECT lvl.level, lvl.node_id, r.granularity, r.period_start,
       sum(r.import_wh), sum(r.export_wh), count(DISTINCT r.meter_id)
  FROM meters_meterrollup r
  JOIN meters_meter m ON m.id = r.meter_id
  JOIN grid_connectionpoint cp ON cp.id = m.connection_point_id
  JOIN grid_transformer t ON t.id = cp.transformer_id
 CROSS JOIN LATERAL (VALUES ('transformer', t.id), ('feeder', t.feeder_id)) AS lvl(level, node_id)
 WHERE (r.granularity = 'hour' AND r.period_start = ANY(%(hours)s::timestamptz[]))
    OR (r.granularity = 'day' AND r.period_start = ANY(%(days)s::timestamptz[]))
 GROUP BY 1, 2, 3, 4;
"""


def rollups_mark_dirty(
    *, meter_ids: Iterable[int], hours: Iterable[datetime] = (), starts: Iterable[int] = ()
) -> None:
    """Record touched hours — given as datetimes, or as interval starts in Unix seconds (the
    ingest path) — inside the writer's transaction, and give the touched meters new readings
    versions (apps/meters/readings/versions.py: the member pages' caches)."""
    readings_changed(meter_ids=meter_ids)
    distinct = {h.replace(minute=0, second=0, microsecond=0) for h in hours}
    distinct.update(datetime.fromtimestamp(h, UTC) for h in {t - t % 3600 for t in starts})
    distinct = sorted(distinct)
    if not distinct:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO meters_rollupdirtyhour (hour_start) SELECT unnest(%s::timestamptz[]) "
            "ON CONFLICT DO NOTHING",
            [distinct],
        )


@transaction.atomic
def rollups_refresh(*, limit: int = 500) -> int:
    """Recompute the rollups of up to `limit` dirty hours; return how many hours were refreshed.

    Dirty rows are claimed with SKIP LOCKED, so two refreshers never do the same hour twice.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM meters_rollupdirtyhour WHERE hour_start IN ("
            " SELECT hour_start FROM meters_rollupdirtyhour ORDER BY hour_start"
            " LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING hour_start",
            [limit],
        )
        hours = sorted(row[0] for row in cursor.fetchall())
        if not hours:
            return 0
        days = sorted({h.replace(hour=0) for h in hours})
        params = {
            "hours": hours,
            "days": days,
            "lo": hours[0],
            "hi": hours[-1].replace(minute=59, second=59),
            "day_lo": days[0],
            "day_hi": days[-1] + timedelta(days=1),
        }
        partitions_ensure(start=days[0], end=hours[-1], tables=["meters_meterrollup"])
        for script in (_REFRESH_METER_HOURS, _REFRESH_METER_DAYS, _REFRESH_GRID):
            for statement in filter(str.strip, script.split(";\n")):
                cursor.execute(statement, params)
    return len(hours)
