"""Read validated interval energy from the meters app, aggregated per UTC hour (reads only).

Reads the current version of each validated reading through `apps.meters.selectors`. Values with
ESPI quality *questionable* (10) or *raw* (14) are not certified and not counted: they have not
passed validation. Estimated values (8, 9) count and are marked as such in certificate lineage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from apps.meters.selectors import member_hourly_import, member_hourly_import_iter, meter_intervals

HOUR = timedelta(hours=1)
UNCERTIFIABLE_QUALITIES = (10, 14)  # ESPI questionable, raw
PRODUCING_ASSET_KINDS = ("pv", "shared_pv", "shared_wind")
ENERGY_SOURCE_BY_ASSET = {"pv": "solar", "shared_pv": "solar", "shared_wind": "wind"}


def floor_hour(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return value.replace(minute=0, second=0, microsecond=0)


@dataclass
class HourEnergy:
    hour_start: datetime
    wh: int = 0
    intervals: list[dict] = field(default_factory=list)

    def complete(self, interval_seconds: int) -> bool:
        return len(self.intervals) >= 3600 // max(1, interval_seconds)


def meter_hourly_export(meter, start: datetime, end: datetime) -> dict[datetime, HourEnergy]:
    """Validated export (generation) Wh of one meter per hour in [start, end), with lineage."""
    hours: dict[datetime, HourEnergy] = {}
    rows = meter_intervals(
        meter_id=meter.pk, start=start, end=end, exclude_qualities=UNCERTIFIABLE_QUALITIES
    )
    for interval_start, version, _import_wh, export_wh, quality in rows:
        hour = floor_hour(interval_start)
        entry = hours.setdefault(hour, HourEnergy(hour))
        entry.wh += int(export_wh)
        entry.intervals.append(
            {
                "interval_start": interval_start.isoformat(),
                "version": version,
                "export_wh": int(export_wh),
                "quality": quality,
            }
        )
    return hours


def members_hourly_import(
    start: datetime, end: datetime, member_ids: Iterable[int] | None = None
) -> dict[int, dict[datetime, int]]:
    """Validated import (consumption) Wh per member per hour in [start, end) — one query."""
    return member_hourly_import(
        start=start, end=end, member_ids=member_ids, exclude_qualities=UNCERTIFIABLE_QUALITIES
    )


def members_hourly_import_iter(
    start: datetime, end: datetime, member_ids: Iterable[int] | None = None
) -> Iterator[tuple[int, dict[datetime, int]]]:
    """The figures of :func:`members_hourly_import`, one member at a time in member id order,
    streamed (memory holds one member's hours, not members × hours)."""
    return member_hourly_import_iter(
        start=start, end=end, member_ids=member_ids, exclude_qualities=UNCERTIFIABLE_QUALITIES
    )


def producing_meters():
    from apps.meters.models import Meter

    return Meter.objects.filter(
        Q(asset_kind__in=PRODUCING_ASSET_KINDS) & ~Q(direction="import")
    ).select_related("member")
