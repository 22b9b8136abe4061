"""Scale benchmark: a 10,000-meter cooperative's history, and how each page and job grows with it.

Not part of the default `make bench` (it loads tens of millions of readings): run it with
`make bench BENCH=scale`. It works in a database of its own (BENCH_SCALE_DB, default
`<your database>_scale`, dropped and recreated, migrated by the app's migrations), generates the
synthetic cooperative of bench/scale_data.py (BENCH_SCALE_METERS meters, default 10,000) and
loads its readings with COPY in growing sizes (BENCH_SCALE_DAYS, default "3,30": the last 3
days, then the 27 days before them on top, in the same database). At each size it prints one
JSON line per figure with `"readings": N`; after the last size, one `<metric>_ratio` line
(last size / first size) per figure. BENCH_SCALE_ONLY (comma-separated: member_pages,
member_exports, settlement, clearing, new_interval, reports, forecasting) measures only those.

After each load the readings are ANALYZEd and their rollups built set-based, a day at a time
(`scale_data.rollups_build_bulk`); `rollups_bulk_vs_refresh_differing_rows` compares them with
`rollups_refresh` on three sample hours (0 expected).

Figures (CPU seconds are this process's plus its PostgreSQL backend's, read from /proc, because
wall times on a shared 2-core machine are noisy):
- write cost: COPY per reading (wall and CPU), the ingest path's `readings_insert` for one new
  signed interval of every meter, bytes per reading of the reading table with its indexes;
- member pages through the real views (Django test client, logged-in members): dashboard
  (today and 7 days) and meter detail, p50/p95 over BENCH_SCALE_MEMBERS random members, cold
  (first request of that member, no member page cached) and warm (the same request again), and
  the dashboard's data selector on its own;
- one member-month: Green Button and CSV export; statement data (after the settlement below);
- settlement of one day for every member (compute and write the lines; rolled back);
- clearing of one interval and of a day (96 intervals) with 10,000 members (market engine);
- rollup refresh after the new interval; anchoring that interval (signature check, Merkle tree,
  outbox intent; rolled back, no chain needed);
- the auditor's interval-data report (built and written as a streamed CSV download) over one hour
  and one day (peak traced memory, tracemalloc) and one day and one month (rows/s), and the
  carbon report over one month: time and peak traced memory;
- forecasting: CPU seconds per series for the daily forecast and for the model choice
  (backtest), measured on BENCH_SCALE_FORECAST_SERIES meters and transformers and extrapolated to
  every meter and transformer (the metric names say "extrapolated").
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import emit, setup_django  # noqa: E402

BENCH = "scale"
METERS = int(os.environ.get("BENCH_SCALE_METERS", "10000"))
DAYS = sorted(int(d) for d in os.environ.get("BENCH_SCALE_DAYS", "3,30").split(",") if d)
SAMPLE = int(os.environ.get("BENCH_SCALE_MEMBERS", "200"))
FORECAST_SERIES = int(os.environ.get("BENCH_SCALE_FORECAST_SERIES", "10"))
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _db_name() -> str:
    if os.environ.get("BENCH_SCALE_DB"):
        return os.environ["BENCH_SCALE_DB"]
    url = os.environ.get("DATABASE_URL")
    if not url:
        env_file = ROOT / ".env"
        if env_file.exists():
            for line in env_file.read_text().splitlines():
                if line.startswith("DATABASE_URL="):
                    url = line.split("=", 1)[1].strip()
    name = urlparse(url).path.lstrip("/") if url else "energysphere"
    return f"{name}_scale"


DB = _db_name()


def _env() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "DATABASE_REPLICA_URL": "",
        "CACHE_KEY_PREFIX": f"bench-{DB}",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }


def _database(action: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        if action == "create":
            c.execute(f'CREATE DATABASE "{DB}"')
    if action == "create":
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=_env(), check=True)  # fmt: skip


# --- measuring ---------------------------------------------------------------------------------


class Cpu:
    """CPU seconds of this process and of its PostgreSQL backend (same machine, /proc)."""

    def __init__(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backend = cursor.fetchone()[0]
        self.tick = os.sysconf("SC_CLK_TCK")

    def _backend(self) -> float:
        try:
            fields = Path(f"/proc/{self.backend}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / self.tick
        except (OSError, IndexError, ValueError):
            return 0.0

    def __enter__(self) -> Cpu:
        self.t0, self.c0, self.b0 = time.perf_counter(), time.process_time(), self._backend()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.client = time.process_time() - self.c0
        self.server = self._backend() - self.b0
        self.cpu = self.client + self.server


class Figures:
    """Emits figures and keeps them per size for the ratio lines."""

    def __init__(self) -> None:
        self.by_size: dict[int, dict[str, tuple[float, str]]] = {}
        self.readings = 0

    def __call__(self, metric: str, value: float, unit: str, **extra: object) -> None:
        emit(BENCH, metric, value, unit, readings=self.readings, **extra)
        self.by_size.setdefault(self.readings, {})[metric] = (float(value), unit)

    def ratios(self) -> None:
        sizes = sorted(self.by_size)
        if len(sizes) < 2:
            return
        small, large = self.by_size[sizes[0]], self.by_size[sizes[-1]]
        for metric, (value, _) in large.items():
            base = small.get(metric, (0.0, ""))[0]
            if base > 0:
                emit(BENCH, f"{metric}_ratio", value / base, "x", readings=sizes[-1],
                     readings_small=sizes[0])  # fmt: skip


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def _reading_bytes() -> tuple[int, int]:
    """(bytes of the reading tables with indexes, rows) over every partition."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
            "FROM pg_partition_tree('meters_reading')"
        )
        size = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM meters_reading")
        rows = cursor.fetchone()[0]
    return int(size), int(rows)


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


class _Rollback(Exception):
    pass


# --- figures -------------------------------------------------------------------------------------


def member_pages(fig: Figures, coop, members: list) -> None:
    from django.core.cache import cache
    from django.test import Client
    from django.utils import timezone

    from apps.meters.selectors import member_dashboard_data

    first_meter = {}
    for m in coop.meters:
        first_meter.setdefault(m.member_id, m.meter_id)
    warm_up = Client()  # the first request of a process loads templates and URL confs
    warm_up.force_login(members[0].user)
    warm_up.get("/")
    warm_up.get(f"/meters/{first_meter[members[0].pk]}/")
    try:  # "cold": no member page cached; never a flush of the (possibly shared) Redis database
        from apps.meters.readings.versions import readings_versions_forget
    except ImportError:  # commits before the member-page cache: only sessions were cached
        readings_versions_forget = cache.clear
    readings_versions_forget()
    times: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    for member in members:
        client = Client()
        client.force_login(member.user)
        for page, url in (
            ("dashboard", "/"),
            ("meter_detail", f"/meters/{first_meter[member.pk]}/"),
        ):
            for state in ("cold", "warm"):
                with Cpu() as c:
                    response = client.get(url)
                times.setdefault(f"{page}_{state}", []).append(c.wall)
                cpus.setdefault(f"{page}_{state}", []).append(c.cpu)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}")
        t0 = time.perf_counter()
        data = member_dashboard_data(member=member, now=timezone.now())
        times.setdefault("dashboard_data", []).append(time.perf_counter() - t0)
        if not data["week"]["labels"]:
            raise RuntimeError("a synthetic member has no readings on the dashboard")
    for name, values in times.items():
        ms = [v * 1000 for v in values]
        fig(f"member_{name}_p50_ms", _pct(ms, 50), "ms", members=len(members))
        fig(f"member_{name}_p95_ms", _pct(ms, 95), "ms", members=len(members), target_ms=100)
        if name in cpus:  # CPU of the request: Python and its PostgreSQL backend
            cpu_ms = [v * 1000 for v in cpus[name]]
            fig(f"member_{name}_cpu_p50_ms", _pct(cpu_ms, 50), "ms")
            fig(f"member_{name}_cpu_p95_ms", _pct(cpu_ms, 95), "ms")


def member_exports(fig: Figures, coop, member, month_start: datetime, month_end: datetime) -> None:
    from apps.meters.exports import green_button_xml, interval_rows, readings_csv

    rows = len(interval_rows(member=member, start=month_start, end=month_end))
    for name, fn in (("green_button", green_button_xml), ("csv", readings_csv)):
        with Cpu() as c:
            fn(member=member, start=month_start, end=month_end)
        fig(f"export_{name}_member_month_ms", c.wall * 1000, "ms", rows=rows, cpu_s=c.cpu)


def settlement_day(fig: Figures, coop, day_start: datetime, member) -> None:
    from django.db import transaction

    from apps.market.models import SettlementRun
    from apps.market.services.settlement import settlement_run_settle
    from apps.market.services.statements import statement_generate

    try:
        with transaction.atomic():
            run = SettlementRun.objects.create(
                period_start=day_start, period_end=day_start + timedelta(days=1),
                status=SettlementRun.Status.METERED,
            )  # fmt: skip
            with Cpu() as c:
                settlement_run_settle(run=run)
            lines = run.lines.count()
            fig("settlement_day_all_members_s", c.wall, "s", cpu_s=c.cpu, lines=lines,
                members=len(coop.member_ids))  # fmt: skip
            month = day_start.date().replace(day=1)
            with Cpu() as c:
                statement_generate(member=member, month=month)
            fig("statement_member_month_ms", c.wall * 1000, "ms", cpu_s=c.cpu)
            raise _Rollback
    except _Rollback:
        pass


def clearing(fig: Figures) -> None:
    from apps.market import clearing as engine
    from bench.bench_market import synthetic_market

    orders, network = synthetic_market(10_000)
    with Cpu() as c:
        engine.clear(orders, network)
    fig(
        "clearing_interval_10000_members_s", c.wall, "s", cpu_s=c.cpu, engine="apps.market.clearing"
    )
    markets = [synthetic_market(10_000, seed=k) for k in range(4)]
    with Cpu() as c:
        for k in range(96):
            engine.clear(*markets[k % 4])
    fig("clearing_day_96_intervals_10000_members_s", c.wall, "s", cpu_s=c.cpu,
        engine="apps.market.clearing")  # fmt: skip


def new_interval(fig: Figures, coop, start: datetime) -> None:
    """One new signed interval of every meter through the ingest path's insert, then the rollup
    refresh it causes and its anchoring (rolled back)."""
    from django.db import transaction

    from apps.chain.anchoring import meter_interval_anchor
    from apps.demo.keys import demo_device_key
    from apps.meters.readings.partitions import partitions_ensure
    from apps.meters.readings.rollups import rollups_mark_dirty, rollups_refresh
    from apps.meters.readings.store import ReadingRow, readings_insert
    from apps.meters.signing import SignedFields, sign_reading

    epoch = int(start.timestamp())
    rows = []
    for m in coop.meters:
        seq, imp, exp, ri, re_ = epoch // 900, 100 + m.meter_id % 300, 0, 9_000_000, 0
        fields = SignedFields(m.serial, seq, epoch, 900, imp, exp, ri, re_, 0)
        signature = sign_reading(demo_device_key(m.serial), fields)
        rows.append(ReadingRow(m.meter_id, epoch, 1, 900, imp, exp, ri, re_, 0, seq, signature,
                               0, 0, "", None))  # fmt: skip
    partitions_ensure(start=start, end=start)
    with Cpu() as c, transaction.atomic():
        written = readings_insert(rows, "mqtt")
        rollups_mark_dirty(meter_ids=[m.meter_id for m in coop.meters], starts=[epoch])
    n = len(rows)
    fig("ingest_insert_us_per_reading", 1e6 * c.wall / n, "us", cpu_us=1e6 * c.cpu / n,
        rows=len(written))  # fmt: skip
    with Cpu() as c:
        rollups_refresh()
    fig("rollup_refresh_one_interval_s", c.wall, "s", cpu_s=c.cpu, meters=len(rows))
    try:
        with transaction.atomic():
            # A meter's first anchored reading registers its device key (one outbox intent per
            # meter, once in its life); measured apart from the steady-state anchoring.
            from apps.chain.anchoring import _meters_register
            from apps.meters.selectors import interval_readings_for_anchoring

            with Cpu() as c:
                registered = _meters_register(interval_readings_for_anchoring(interval_start=start))
            fig("meter_key_registration_once_s", c.wall, "s", cpu_s=c.cpu, meters=registered)
            with Cpu() as c:
                anchor = meter_interval_anchor(interval_start=start)
            fig("anchor_interval_s", c.wall, "s", cpu_s=c.cpu,
                leaves=anchor.leaf_count if anchor else 0)  # fmt: skip
            raise _Rollback
    except _Rollback:
        pass


def _report_stream(kind: str, start: datetime, end: datetime) -> tuple[int, int]:
    """Build a report and write its sealed CSV the way a download does (chunks, hashed and
    counted, never held): (rows, bytes). No export record or anchoring intent is written."""
    from apps.compliance.reports import report_build, report_render, report_render_stream

    doc = report_build(kind=kind, start=start, end=end)
    if doc.streamed:
        chunks, _, _ = report_render_stream(doc)
        size = sum(len(chunk) for chunk in chunks)
    else:
        size = len(report_render(doc, "csv")[0])
    return doc.row_count, size


def reports(fig: Figures, day: tuple[datetime, datetime], month: tuple[datetime, datetime]) -> None:
    """The auditor's reports through the streaming path (build = the first pass over the rows:
    hash, totals; then the CSV written in chunks: the second pass), as a download makes them.
    Interval data: peak traced memory (tracemalloc) over one hour and one day — constant when
    the report streams — and rows/s over one day and, when at most BENCH_SCALE_REPORT_MAX_ROWS
    readings are stored (default 3,000,000), over the month (untraced). Carbon: one month,
    traced."""
    hour = (day[0], day[0] + timedelta(hours=1))
    for name, period in (("hour", hour), ("day", day)):
        tracemalloc.start()
        rows, _ = _report_stream("interval_data", *period)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        fig(f"report_interval_data_{name}_peak_mib", peak / 2**20, "MiB", rows=rows,
            note="build + streamed CSV, tracemalloc")  # fmt: skip
    with Cpu() as c:
        rows, size = _report_stream("interval_data", *day)
    fig("report_interval_data_day_rows_per_s", rows / c.wall, "rows/s", rows=rows, cpu_s=c.cpu,
        csv_mib=size / 2**20, note="two passes: hash, then the CSV")  # fmt: skip
    max_rows = int(os.environ.get("BENCH_SCALE_REPORT_MAX_ROWS", "3000000"))
    if fig.readings <= max_rows:  # the month's rows are at most every reading stored
        with Cpu() as c:
            rows, size = _report_stream("interval_data", *month)
        fig("report_interval_data_month_rows_per_s", rows / c.wall, "rows/s", rows=rows,
            cpu_s=c.cpu, wall_s=c.wall, csv_mib=size / 2**20)  # fmt: skip
    tracemalloc.start()
    with Cpu() as c:
        rows, size = _report_stream("carbon", *month)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    fig("report_carbon_month_s", c.wall, "s", rows=rows, cpu_s=c.cpu, note="tracemalloc on")
    fig("report_carbon_month_peak_mib", peak / 2**20, "MiB", rows=rows)


def forecasting(fig: Figures, coop, now: datetime) -> None:
    from django.db import transaction

    from apps.core.exceptions import ApplicationError
    from apps.grid.services.forecasts import forecast_issue, forecast_model_choose
    from apps.meters.models import Meter

    rng = random.Random(5)
    pv = {Meter.AssetKind.PV.value}
    kinds = dict(Meter.objects.values_list("serial", "asset_kind"))
    meters = rng.sample(coop.meters, min(FORECAST_SERIES, len(coop.meters)))
    groups = {
        "meter": [f"meter:{m.serial}:{'pv' if kinds[m.serial] in pv else 'load'}" for m in meters],
        "transformer": [f"transformer:{t}:load" for t in rng.sample(
            coop.transformer_ids, min(FORECAST_SERIES, len(coop.transformer_ids)))],
    }  # fmt: skip
    totals = {"meter": len(coop.meters), "transformer": 2 * len(coop.transformer_ids)}
    for scope, keys in groups.items():
        # One rolled-back transaction per scope: the daily forecasts find the model choices made
        # just before (as the daily task does, choices being re-made only every 7 days).
        cpu = {"model_choice": 0.0, "daily": 0.0}
        failed = {"model_choice": 0, "daily": 0}
        try:
            with transaction.atomic():
                for step, fn in (
                    ("model_choice", forecast_model_choose),
                    ("daily", forecast_issue),
                ):
                    for key in keys:
                        with Cpu() as c:
                            try:
                                fn(series_key=key, now=now)
                            except ApplicationError:
                                failed[step] += 1
                        cpu[step] += c.cpu
                raise _Rollback
        except _Rollback:
            pass
        for step in ("model_choice", "daily"):
            if failed[step] == len(keys):
                emit(BENCH, f"forecast_{step}_{scope}_not_possible", failed[step], "series",
                     readings=fig.readings, note="too little history for a backtest")  # fmt: skip
                continue
            per_series = cpu[step] / len(keys)
            fig(f"forecast_{step}_{scope}_cpu_s_per_series", per_series, "s", series=len(keys),
                failed=failed[step])  # fmt: skip
            fig(f"forecast_{step}_all_{scope}s_cpu_s_extrapolated", per_series * totals[scope],
                "s", series_total=totals[scope], sampled=len(keys))  # fmt: skip


def measure(fig: Figures, coop, size_days: int, copy_cpu, copied: int) -> None:
    from apps.accounts.models import Member

    size, rows = _reading_bytes()
    fig.readings = rows
    fig("copy_us_per_reading", 1e6 * copy_cpu.wall / copied, "us",
        cpu_us=1e6 * copy_cpu.cpu / copied, rows=copied, days=size_days)  # fmt: skip
    fig("reading_table_bytes_per_reading", size / rows, "B", total_mib=size / 2**20)
    fig("reading_table_mib_per_million", size / rows * 1e6 / 2**20, "MiB")

    rng = random.Random(11)
    ids = rng.sample(coop.member_ids, min(SAMPLE, len(coop.member_ids)))
    members = list(Member.objects.filter(pk__in=ids).select_related("user"))
    month_start, month_end = coop.end - timedelta(days=30), coop.end
    day = datetime.combine(coop.end.date() - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    step = DAYS.index(size_days)
    only = {g for g in os.environ.get("BENCH_SCALE_ONLY", "").split(",") if g}
    for name, group in (
        ("member_pages", lambda: member_pages(fig, coop, members)),
        ("member_exports", lambda: member_exports(fig, coop, members[0], month_start, month_end)),
        ("settlement", lambda: settlement_day(fig, coop, day - timedelta(days=step), members[0])),
        ("clearing", lambda: clearing(fig)),
        ("new_interval", lambda: new_interval(fig, coop, coop.end + timedelta(seconds=900 * step))),
        ("reports", lambda: reports(fig, (day, day + timedelta(days=1)), (month_start, month_end))),
        ("forecasting", lambda: forecasting(fig, coop, coop.end)),
    ):
        if only and name not in only:
            continue
        try:
            group()
        except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the others
            emit(BENCH, f"{name}_failed", 1, "error", readings=fig.readings, error=repr(exc)[:300])


def run() -> None:
    os.environ.update(_env())
    _database("create")
    try:
        setup_django()
        from bench import scale_data

        fig = Figures()
        end = scale_data.interval_floor(datetime.now(tz=UTC))
        t0 = time.perf_counter()
        coop = scale_data.cooperative_create(meters=METERS, end=end, horizon_days=max(DAYS))
        emit(BENCH, "generate_cooperative_s", time.perf_counter() - t0, "s", meters=METERS,
             members=len(coop.member_ids), transformers=len(coop.transformer_ids))  # fmt: skip
        loaded_from = end
        for days in DAYS:
            start = end - timedelta(days=days)
            with Cpu() as copy_cpu:
                copied = scale_data.readings_copy(coop, start, loaded_from)
            _analyze()  # fresh rows: the planner needs their statistics for the day scans below
            with Cpu() as c:
                built = scale_data.rollups_build_bulk(start, loaded_from)
            emit(BENCH, "rollups_build_s", c.wall, "s", cpu_s=c.cpu, calendar_days=built,
                 days=(loaded_from - start).days)  # fmt: skip
            # The bulk build must equal the real refresh: the window's first and last hour (they
            # share days with the size loaded before) and one in its middle.
            sample = [start, start + (loaded_from - start) / 2, loaded_from - timedelta(hours=1)]
            differences = scale_data.rollups_differences(sample)
            emit(BENCH, "rollups_bulk_vs_refresh_differing_rows", differences, "rows",
                 hours_checked=len(sample))  # fmt: skip
            loaded_from = start
            _analyze()
            measure(fig, coop, days, copy_cpu, copied)
        fig.ratios()
    finally:
        from django.db import connections

        connections.close_all()
        if os.environ.get("BENCH_SCALE_KEEP_DB") != "1":
            _database("drop")


if __name__ == "__main__":
    run()
