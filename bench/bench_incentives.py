"""Incentives and compliance benchmark (no database): pure allocation, Scope 2 and report
rendering/verification throughput.

- shared-asset allocation: one year of hourly production (8,760 periods) split among 100
  shareholders with remainders carried forward — periods per second, and the invariants checked
  (every period exact; max deviation from the exact cumulative entitlement, Wh);
- Scope 2: one member-month (744 hours) with half of the hours covered by certificates;
- reports: canonical data + SHA-256, CSV, XLSX and PDF rendering and verification (hashes
  recomputed from the file; anchors not looked up, no database) of an interval-data-like report
  of 10,000 and 100,000 rows (the PDF prints the first 100 rows and embeds all).
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import emit, setup_django  # noqa: E402

BENCH = "incentives"


def _allocation() -> None:
    from apps.incentives.allocation import PPM, allocate

    rng = random.Random(1)
    cuts = sorted(rng.sample(range(1, PPM), 99))
    bounds = [0, *cuts, PPM]
    weights = {i: bounds[i + 1] - bounds[i] for i in range(100)}
    totals = [max(0, int(rng.gauss(20_000, 15_000))) for _ in range(8760)]
    carry: dict = {}
    cumulative = dict.fromkeys(weights, 0)
    t0 = time.perf_counter()
    for total in totals:
        result = allocate(total, weights, carry)
        carry = result.carry
        for k, v in result.amounts.items():
            cumulative[k] += v
    elapsed = time.perf_counter() - t0
    grand = sum(totals)
    deviation = max(abs(cumulative[k] - Fraction(grand * w, PPM)) for k, w in weights.items())
    emit(BENCH, "allocation_periods_per_s_100_holders", len(totals) / elapsed, "periods/s")
    emit(BENCH, "allocation_year_seconds_100_holders", elapsed, "s")
    emit(BENCH, "allocation_wh_lost_or_created", sum(cumulative.values()) - grand, "Wh")
    emit(BENCH, "allocation_max_deviation_from_exact", float(deviation), "Wh")


def _scope2() -> None:
    from apps.incentives.carbon import ClaimedCertificate, scope2

    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [start + timedelta(hours=h) for h in range(744)]
    consumption = {h: 400 + (i * 37) % 900 for i, h in enumerate(hours)}
    claimed = [ClaimedCertificate(str(i), h, 500, Decimal(0)) for i, h in enumerate(hours[::2])]
    t0 = time.perf_counter()
    n = 50
    for _ in range(n):
        result = scope2(consumption, claimed, lambda h: Decimal(380), lambda h: Decimal(560))
    elapsed = (time.perf_counter() - t0) / n
    emit(BENCH, "scope2_member_month_ms", elapsed * 1000, "ms")
    emit(BENCH, "scope2_market_vs_location_ratio",
         float(result.market_kg / result.location_kg), "ratio")  # fmt: skip


def _reports() -> None:
    from apps.compliance.reports import report_render, report_verify
    from apps.compliance.reports.document import ReportDocument, Table

    for n in (10_000, 100_000):
        start = datetime(2026, 6, 1, tzinfo=UTC)
        table = Table(
            "intervals",
            ["meter", "member", "interval_start", "import_wh", "export_wh", "quality", "version"],
            [
                [
                    f"M-{i % 100:03d}",
                    f"T{i % 100:05d}",
                    (start + timedelta(minutes=15 * (i // 100))).isoformat(),
                    100 + i % 377,
                    i % 91,
                    0,
                    1,
                ]
                for i in range(n)
            ],  # fmt: skip
        )
        doc = ReportDocument(
            kind="interval_data",
            title="Interval data export",
            params={"start": start.isoformat(), "end": (start + timedelta(days=30)).isoformat()},
            tables=[table],
            totals=[("Intervals", n)],
            anchors=[
                {
                    "type": "meter_anchor",
                    "root": "0x" + "ab" * 32,
                    "version": 1,
                    "interval_start": (start + timedelta(minutes=15 * i)).isoformat(),
                }
                for i in range(96)
            ],  # fmt: skip
            generated_at="2026-07-01T00:00:00+00:00",
        )
        t0 = time.perf_counter()
        digest = doc.content_hash
        emit(BENCH, f"report_hash_{n}_rows_ms", (time.perf_counter() - t0) * 1000, "ms",
             sha256=digest[:12])  # fmt: skip
        for fmt in ("csv", "xlsx", "pdf"):
            t0 = time.perf_counter()
            body, _, _ = report_render(doc, fmt)
            emit(BENCH, f"report_render_{fmt}_{n}_rows_s", time.perf_counter() - t0, "s",
                 bytes=len(body))  # fmt: skip
            t0 = time.perf_counter()
            verdict = report_verify(body, check_anchors=False).verdict
            emit(BENCH, f"report_verify_{fmt}_{n}_rows_s", time.perf_counter() - t0, "s",
                 verdict=verdict)  # fmt: skip


def run() -> None:
    setup_django()
    _allocation()
    _scope2()
    _reports()


if __name__ == "__main__":
    run()
