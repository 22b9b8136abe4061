"""Demand-response baseline (pure: no Django).

"Average of the same hours on the last 10 similar days" (docs/domain.md, "Baselines"; the CAISO/PJM
"10-in-10" family of customer baselines): similar days are earlier days of the same type (weekday
Monday–Friday, or weekend), looked up to `lookback_days` back, skipping days that had a DR event
and days with any missing interval in the window. The window is taken at the same *local*
wall-clock time on each day, so a DST change between the days does not shift the hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


class BaselineError(ValueError):
    pass


@dataclass(frozen=True)
class Baseline:
    per_interval_wh: list[float]  # one value per event interval
    days: list[date]  # the similar days used, newest first

    @property
    def total_wh(self) -> int:
        return round(sum(self.per_interval_wh))


def is_similar(a: date, b: date) -> bool:
    return (a.weekday() >= 5) == (b.weekday() >= 5)


def event_offsets(start: datetime, end: datetime, tz: ZoneInfo, step: timedelta) -> list[timedelta]:
    """Offsets of each event interval from local midnight of the event day (wall clock)."""
    local = start.astimezone(tz)
    midnight = datetime.combine(local.date(), datetime.min.time())
    offsets = []
    t = start
    while t < end:
        wall = t.astimezone(tz).replace(tzinfo=None)
        offsets.append(wall - midnight)
        t += step
    return offsets


def similar_day_baseline(
    energy_wh: Mapping[datetime, int],
    *,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    step: timedelta = timedelta(minutes=15),
    days: int = 10,
    lookback_days: int = 45,
    exclude: set[date] | frozenset[date] = frozenset(),
    min_days: int = 3,
) -> Baseline:
    """`energy_wh` maps aware UTC interval starts to metered Wh of the site."""
    if end <= start:
        raise BaselineError("the event must end after it starts")
    offsets = event_offsets(start, end, tz, step)
    event_day = start.astimezone(tz).date()
    chosen: list[tuple[date, list[int]]] = []
    for back in range(1, lookback_days + 1):
        day = event_day - timedelta(days=back)
        if day in exclude or not is_similar(day, event_day):
            continue
        midnight = datetime.combine(day, datetime.min.time())
        values = []
        for off in offsets:
            wall = midnight + off
            stamp = wall.replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))
            value = energy_wh.get(stamp)
            if value is None:
                break
            values.append(value)
        else:
            chosen.append((day, values))
            if len(chosen) == days:
                break
    if len(chosen) < min_days:
        raise BaselineError(
            f"only {len(chosen)} similar day(s) with complete metered data in the last "
            f"{lookback_days} days; at least {min_days} are needed for a baseline"
        )
    per_interval = [sum(v[i] for _, v in chosen) / len(chosen) for i in range(len(offsets))]
    return Baseline(per_interval_wh=per_interval, days=[d for d, _ in chosen])
