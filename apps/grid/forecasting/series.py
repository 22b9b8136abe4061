"""Reading and cleaning a `timestamp,value` time series (pure: no Django).

Everything that is wrong with an input is reported in words a user can act on: non-numeric or
unparseable rows (with line numbers), conflicting duplicates, timestamps off the inferred grid,
too little history. What can be repaired is repaired *explicitly* and reported: unsorted rows are
sorted, identical duplicates dropped, gaps filled (short ones by linear interpolation, long ones
from the same slot one week or one day earlier) and counted, so a forecast never silently trains
on invented data without saying so.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

_HAS_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
# Gaps up to this long are interpolated linearly; longer ones use the seasonal profile.
SHORT_GAP = timedelta(hours=1)


class SeriesError(ValueError):
    """The input cannot be used; `details` says exactly what is wrong."""

    def __init__(self, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


@dataclass
class CleanSeries:
    values: pd.Series  # regular, UTC DatetimeIndex, float, no NaN
    step: timedelta
    notes: list[str] = field(default_factory=list)
    filled_mask: np.ndarray | None = None  # True where a value was filled in, not measured
    report: dict = field(default_factory=dict)

    @property
    def steps_per_day(self) -> int:
        return int(timedelta(days=1) / self.step)


def read_csv_rows(path: str | Path) -> list[tuple[int, str, str]]:
    """Return (line number, timestamp text, value text) of every data row."""
    path = Path(path)
    if not path.exists():
        raise SeriesError(f"File not found: {path}")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return parse_csv_text(text)


def parse_csv_text(text: str) -> list[tuple[int, str, str]]:
    rows: list[tuple[int, str, str]] = []
    reader = csv.reader(io.StringIO(text))
    for lineno, row in enumerate(reader, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 2:
            rows.append((lineno, row[0].strip(), ""))
            continue
        rows.append((lineno, row[0].strip(), row[1].strip()))
    if rows and rows[0][1].lower() in {"timestamp", "time", "datetime", "date"}:
        rows = rows[1:]
    if not rows:
        raise SeriesError("The CSV has no data rows (expected a header `timestamp,value`).")
    return rows


def series_from_rows(rows: list[tuple[int, str, str]]) -> tuple[pd.Series, list[str]]:
    """Parse rows into a sorted, de-duplicated UTC series. Raise on anything not repairable."""
    bad_value: list[dict] = []
    bad_time: list[dict] = []
    stamps: list[str] = []
    values: list[float] = []
    lines: list[int] = []
    for lineno, ts, raw in rows:
        try:
            value = float(raw)
        except ValueError:
            bad_value.append({"line": lineno, "value": raw[:40]})
            continue
        if not np.isfinite(value):
            bad_value.append({"line": lineno, "value": raw[:40]})
            continue
        stamps.append(ts)
        values.append(value)
        lines.append(lineno)
    parsed = pd.to_datetime(pd.Series(stamps, dtype="object"), utc=True, errors="coerce")
    for lineno, ts, ok in zip(lines, stamps, parsed.notna(), strict=True):
        if not ok:
            bad_time.append({"line": lineno, "timestamp": ts[:40]})
    if bad_value or bad_time:
        parts = []
        if bad_value:
            first = ", ".join(f"line {b['line']} ({b['value']!r})" for b in bad_value[:5])
            parts.append(f"{len(bad_value)} row(s) with a non-numeric value: {first}")
        if bad_time:
            first = ", ".join(f"line {b['line']} ({b['timestamp']!r})" for b in bad_time[:5])
            parts.append(f"{len(bad_time)} row(s) with an unreadable timestamp: {first}")
        raise SeriesError(
            "; ".join(parts) + ". Fix or remove these rows.",
            {"non_numeric": bad_value[:20], "bad_timestamp": bad_time[:20]},
        )
    frame = pd.DataFrame({"t": parsed.to_numpy(), "v": values, "line": lines})
    notes: list[str] = []
    naive = sum(1 for ts in stamps if not _HAS_OFFSET.search(ts))
    if naive:
        notes.append(f"{naive} timestamp(s) had no UTC offset and were read as UTC")
    if not frame["t"].is_monotonic_increasing:
        notes.append("rows were not in time order; sorted by timestamp")
        frame = frame.sort_values(["t", "line"], kind="stable")
    dup = frame[frame.duplicated("t", keep=False)]
    if not dup.empty:
        conflicts = dup.groupby("t")["v"].nunique()
        conflicting = conflicts[conflicts > 1]
        if not conflicting.empty:
            examples = []
            for t in conflicting.index[:5]:
                group = dup[dup["t"] == t]
                examples.append(
                    {
                        "timestamp": t.isoformat(),
                        "lines": group["line"].tolist(),
                        "values": group["v"].tolist(),
                    }
                )
            raise SeriesError(
                f"{len(conflicting)} timestamp(s) appear more than once with different values, "
                f"e.g. {examples[0]['timestamp']} on lines {examples[0]['lines']}: "
                f"{examples[0]['values']}. Keep one value per timestamp.",
                {"conflicting_duplicates": examples},
            )
        n = int(frame.duplicated("t").sum())
        notes.append(f"dropped {n} exact duplicate row(s)")
        frame = frame.drop_duplicates("t", keep="first")
    series = pd.Series(frame["v"].to_numpy(dtype=float), index=pd.DatetimeIndex(frame["t"]))
    return series, notes


def infer_step(index: pd.DatetimeIndex) -> timedelta:
    if len(index) < 3:
        raise SeriesError(f"Need at least 3 rows to infer the time step, got {len(index)}.")
    diffs = np.diff(index.asi8) // 1_000_000_000
    counts = Counter(int(d) for d in diffs if d > 0)
    step_s, _ = counts.most_common(1)[0]
    if step_s <= 0 or 86_400 % step_s != 0:
        raise SeriesError(
            f"The most common spacing between rows is {step_s} s, which does not divide a day; "
            "use a regular step such as 15 min or 1 h."
        )
    return timedelta(seconds=step_s)


def regularise(series: pd.Series, step: timedelta) -> CleanSeries:
    """Put the series on a regular grid and fill gaps explicitly (reported, flagged)."""
    step_s = int(step.total_seconds())
    off_grid = (series.index.asi8 // 1_000_000_000 - series.index[0].timestamp()) % step_s != 0
    if off_grid.any():
        bad = series.index[off_grid][:5]
        raise SeriesError(
            f"{int(off_grid.sum())} timestamp(s) are not on the {step_s}-second grid starting at "
            f"{series.index[0].isoformat()}, e.g. {', '.join(t.isoformat() for t in bad)}.",
            {"off_grid": [t.isoformat() for t in bad]},
        )
    full = pd.date_range(series.index[0], series.index[-1], freq=f"{step_s}s")
    regular = series.reindex(full)
    missing = regular.isna().to_numpy()
    notes: list[str] = []
    gaps: list[dict] = []
    if missing.any():
        # Runs of missing values.
        starts = np.flatnonzero(missing & ~np.r_[False, missing[:-1]])
        ends = np.flatnonzero(missing & ~np.r_[missing[1:], False])
        short_limit = max(1, int(SHORT_GAP / step))
        per_day = int(timedelta(days=1) / step)
        values = regular.to_numpy(dtype=float).copy()
        for s, e in zip(starts, ends, strict=True):
            length = e - s + 1
            gaps.append({"start": full[s].isoformat(), "missing_steps": int(length)})
            if length <= short_limit:
                left, right = values[s - 1], values[e + 1]  # both exist: ends are measured
                values[s : e + 1] = np.linspace(left, right, length + 2)[1:-1]
            else:
                for i in range(s, e + 1):
                    for lag in (7 * per_day, per_day):
                        if i - lag >= 0 and not np.isnan(values[i - lag]):
                            values[i] = values[i - lag]
                            break
                        if i + lag < len(values) and not missing[i + lag]:
                            values[i] = values[i + lag]
                            break
                    else:
                        values[i] = np.nan
        if np.isnan(values).any():
            # A long gap with no seasonal neighbour at all: interpolate as a last resort.
            values = pd.Series(values).interpolate(limit_direction="both").to_numpy()
        regular = pd.Series(values, index=full)
        notes.append(
            f"filled {int(missing.sum())} missing step(s) in {len(gaps)} gap(s): gaps up to "
            f"{int(SHORT_GAP.total_seconds() // 60)} min linearly, longer ones from the same "
            "slot a week (else a day) earlier; filled values are never used as test actuals"
        )
    return CleanSeries(
        values=regular,
        step=step,
        notes=notes,
        filled_mask=missing,
        report={"gaps": gaps[:50], "gap_count": len(gaps), "filled_steps": int(missing.sum())},
    )


def load_series(path: str | Path) -> CleanSeries:
    rows = read_csv_rows(path)
    series, notes = series_from_rows(rows)
    step = infer_step(series.index)
    clean = regularise(series, step)
    clean.notes = notes + clean.notes
    return clean


def clean_series(series: pd.Series) -> CleanSeries:
    """Same checks for an in-memory series (index: aware datetimes)."""
    rows = [(i + 2, t.isoformat(), repr(float(v))) for i, (t, v) in enumerate(series.items())]
    parsed, notes = series_from_rows(rows)
    step = infer_step(parsed.index)
    clean = regularise(parsed, step)
    clean.notes = notes + clean.notes
    return clean
