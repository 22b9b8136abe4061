"""Helpers shared by benchmarks. Benchmarks print figures; they never fail on time."""

from __future__ import annotations

import json
import os
import sys


def emit(bench: str, metric: str, value: float, unit: str, **extra: object) -> None:
    """Print one figure as one JSON line (the format `make bench` promises)."""
    record = {"bench": bench, "metric": metric, "value": round(float(value), 4), "unit": unit}
    record.update(extra)
    print(json.dumps(record), flush=True)


def setup_django(settings: str = "config.settings.local") -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings)
    import django

    django.setup()
