"""docs/meters.md documents every quarantine reason the code has, once, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from apps.meters.models import QuarantineReason

DOC = Path(__file__).resolve().parents[3] / "docs" / "meters.md"


def _documented_reasons() -> list[str]:
    text = DOC.read_text()
    lines = text.split("### Quarantine reasons", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| reason |"))
    reasons: list[str] = []
    for line in lines[start + 2 :]:  # past the header and the |---| line
        if not line.startswith("|"):
            break  # the end of the table
        reasons += re.findall(r"`([a-z_]+)`", line.split("|")[1])
    return reasons


def test_every_quarantine_reason_in_code_has_one_row_in_the_docs_table():
    documented = _documented_reasons()
    assert sorted(documented) == sorted(set(documented)), "a reason documented twice"
    assert set(documented) == set(QuarantineReason.values)
