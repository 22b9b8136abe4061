"""Settlement intervals: timezone-aware UTC, half-open [start, end), 15 minutes by default
(EU Regulation 2017/2195, art. 53)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

INTERVAL = timedelta(minutes=15)


def ensure_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: all datetimes must be timezone-aware")
    return value.astimezone(UTC)


def floor_interval(value: datetime, length: timedelta = INTERVAL) -> datetime:
    value = ensure_utc(value)
    seconds = int(length.total_seconds())
    epoch = int(value.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def iter_intervals(
    start: datetime, end: datetime, length: timedelta = INTERVAL
) -> Iterator[datetime]:
    """Yield interval starts in [start, end)."""
    current = floor_interval(start, length)
    end = ensure_utc(end)
    while current < end:
        yield current
        current += length
