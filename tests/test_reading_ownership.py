"""One owner for meter readings: outside `apps/meters/` no module knows the reading storage.

Other apps (their tests included) read readings through `apps.meters.selectors` and write them
through `apps.meters.services`; the table names, the version flag, the `Reading` model, the
partition naming and the `apps.meters.readings` package stay inside the meters app.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "reading table": re.compile(r"meters_(reading|rawmessage)"),
    "version flag": re.compile(r"\bis_current\b"),
    "Reading model": re.compile(
        r"\bReading\.objects\b|\bReading(Version|History)?\b\s*[,)\n]"
        r"|import\s+[^\n]*\bReading\b"
    ),  # fmt: skip
    "reading storage package": re.compile(r"apps\.meters\.(readings|partitions|rollups|ingest)\b"),
    "partition name": re.compile(r"_y\d{4}m\d{2}|_y\{"),
}


def _scanned() -> list[Path]:
    files = []
    for top in ("apps", "config"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel.parts[:2] == ("apps", "meters") or "migrations" in rel.parts:
                continue
            files.append(path)
    return files


def _violations(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in FORBIDDEN.items():
            if pattern.search(line + "\n"):
                found.append(f"{number}: {what}: {line.strip()}")
    return found


def test_no_module_outside_meters_knows_the_reading_storage():
    problems = {
        str(path.relative_to(ROOT)): found
        for path in _scanned()
        if (found := _violations(path.read_text(encoding="utf-8")))
    }
    assert not problems, problems


def test_the_scan_catches_each_kind_of_violation():
    samples = [
        "cursor.execute('SELECT * FROM meters_reading WHERE ...')",
        "Reading.objects.filter(is_current=True)",
        "from apps.meters.models import Meter, Reading",
        "from apps.meters.readings.store import readings_insert",
        "DROP TABLE meters_reading_y2026m01",
        "qs.filter(is_current=True)",
    ]
    for sample in samples:
        assert _violations(sample), sample
    for fine in (
        "from apps.meters.selectors import interval_totals",
        "from apps.chain.models import AnchoredReading",
        "head, _, tail = text.partition(marker)",
    ):
        assert not _violations(fine), fine
