"""Live pushes over Channels: the member's latest readings and the community's live balance.

Only members with an open dashboard socket get a message (the consumer registers them in the
cache), and the community balance is recomputed at most every `BALANCE_EVERY_S` seconds, so a
10,000 readings/s ingest does not turn into 10,000 WebSocket sends per second.
"""

from __future__ import annotations

from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from apps.meters.models import Quality

COMMUNITY_GROUP = "meters.community"
BALANCE_EVERY_S = 2


def member_group(member_id: int) -> str:
    return f"meters.member.{member_id}"


def watcher_key(member_id: int) -> str:
    return f"meters:live:watch:{member_id}"


ANY_WATCHER_KEY = "meters:live:any-watcher"  # set while any dashboard socket is open


def latest_for_members(member_ids: list[int]) -> dict[int, dict]:
    """Latest current reading per member (over their meters), one query."""
    if not member_ids:
        return {}
    since = timezone.now() - timedelta(days=2)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (m.member_id) m.member_id, m.serial, r.interval_start, "
            "r.interval_seconds, r.import_wh, r.export_wh, r.quality "
            "FROM meters_reading r JOIN meters_meter m ON m.id = r.meter_id "
            "WHERE r.is_current AND m.member_id = ANY(%s) AND r.interval_start >= %s "
            "AND r.interval_start >= COALESCE(m.member_since, '-infinity'::timestamptz) "
            "ORDER BY m.member_id, r.interval_start DESC, r.ingested_at DESC",
            [member_ids, since],
        )
        return {
            member: {
                "meter": serial,
                "interval_start": start.isoformat(),
                "interval_end": (start + timedelta(seconds=seconds)).isoformat(),
                "import_wh": imp,
                "export_wh": exp,
                "quality": quality,
                "quality_label": Quality(quality).label if quality in Quality.values else "",
            }
            for member, serial, start, seconds, imp, exp, quality in cursor.fetchall()
        }


def community_balance() -> dict | None:
    """Production vs consumption of the whole community in the latest interval with data."""
    since = timezone.now() - timedelta(hours=6)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT interval_start, sum(import_wh), sum(export_wh), count(*) "
            "FROM meters_reading WHERE is_current AND interval_start = ("
            " SELECT max(interval_start) FROM meters_reading "
            " WHERE is_current AND interval_start >= %s) GROUP BY 1",
            [since],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    start, consumption, production, meters = row
    return {
        "interval_start": start.isoformat(),
        "consumption_wh": int(consumption),
        "production_wh": int(production),
        "net_wh": int(production) - int(consumption),
        "meters": meters,
    }


def live_readings_push(*, meter_ids: list[int]) -> int:
    """Push updates for the members owning `meter_ids` who are watching; return sends."""
    layer = get_channel_layer()
    if layer is None or not cache.get(ANY_WATCHER_KEY):
        return 0  # nobody is watching: skip the lookups (the common case at high ingest rates)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT member_id FROM meters_meter WHERE id = ANY(%s) "
            "AND member_id IS NOT NULL",
            [list(meter_ids)],
        )
        member_ids = sorted(row[0] for row in cursor.fetchall())
    watched = cache.get_many([watcher_key(m) for m in member_ids])
    watching = [m for m in member_ids if watcher_key(m) in watched]
    sends = 0
    send = async_to_sync(layer.group_send)
    balance = None
    if cache.add("meters:live:balance-throttle", 1, timeout=BALANCE_EVERY_S) or watching:
        balance = community_balance()
        if balance is not None:
            send(COMMUNITY_GROUP, {"type": "meters.balance", "balance": balance})
            sends += 1
    for member_id, latest in latest_for_members(watching).items():
        send(member_group(member_id), {"type": "meters.latest", "latest": latest})
        sends += 1
    return sends
