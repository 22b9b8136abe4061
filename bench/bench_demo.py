"""Demo cooperative benchmarks.

1. Profiles (pure): building the community from the committed SimBench extract, and generating
   28 days of 15-minute energy for every demo meter.
2. Loading: `manage.py demo_cooperative` into a throwaway database, exactly as `make run` calls
   it (a fresh process: Django start-up included) — first run on an empty database, then the
   idempotent re-run. The database is created, migrated and dropped by the benchmark.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.common import emit

BENCH = "demo"
ROOT = Path(__file__).resolve().parent.parent


def bench_profiles() -> None:
    from apps.demo import profiles

    for cached in (profiles.community, profiles.grid_data, profiles._profile_table):
        cached.cache_clear()
    t0 = time.perf_counter()
    community = profiles.community()
    emit(BENCH, "community_build_seconds", time.perf_counter() - t0, "s",
         households=len(community.households))  # fmt: skip
    end = datetime(2026, 11, 23, tzinfo=UTC)
    start = end - timedelta(days=28)
    t0 = time.perf_counter()
    values = 0
    for spec in [*community.households, community.shared_pv, community.shared_wind]:
        for kind in spec.assets:
            values += len(profiles.asset_energy_wh(spec, kind, start, end))
    elapsed = time.perf_counter() - t0
    emit(BENCH, "history_generation_seconds", elapsed, "s", values=values, days=28)
    emit(BENCH, "history_generation_rate", values / elapsed, "values/s")


def _database_urls(name: str) -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/energysphere")
    parts = urlsplit(base)
    admin = urlunsplit(parts._replace(path="/postgres"))
    return admin.replace("postgres://", "postgresql://", 1), urlunsplit(
        parts._replace(path=f"/{name}")
    )


def _manage(env: dict[str, str], *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - t0, done.stdout


def bench_load() -> None:
    import psycopg

    name = f"es_bench_demo_{os.getpid()}"
    admin_url, url = _database_urls(name)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate_s, _ = _manage(env, "migrate", "--noinput", "-v0")
        emit(BENCH, "migrate_seconds", migrate_s, "s", note="context: not the demo loader")
        first_s, out = _manage(env, "demo_cooperative")
        found = re.search(r"'meters.reading': (\d+)", out)
        readings = int(found.group(1)) if found else None
        emit(BENCH, "first_run_seconds", first_s, "s", readings=readings, output=out.strip()[-300:])
        again_s, out = _manage(env, "demo_cooperative")
        emit(BENCH, "rerun_seconds", again_s, "s", created_nothing="created nothing" in out)
        noop_s, _ = _manage(env, "demo_cooperative", "--print-logins")
        emit(BENCH, "django_startup_seconds", noop_s, "s", note="--print-logins: no database work")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run() -> None:
    bench_profiles()
    bench_load()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    run()
