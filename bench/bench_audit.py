"""Audit-log hash chain benchmark on a database of its own: what chaining costs a writer, how
fast a batch is sealed, and how fast `verify_audit_log` walks the chain.

- writes: BENCH_AUDIT_ROWS rows (default 20,000) through `audit_log_write`, 10 rows per committed
  transaction, each commit sealing its rows (`audit_chain_seal` on commit) — rows per second,
  against the same writes with the chain's hook disabled (the cost of chaining);
- seal: the same number of rows written in one transaction, then chained by one seal — rows per
  second;
- verify: the whole chain walked (`audit_chain_verify`) — rows per second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import emit, setup_django  # noqa: E402

BENCH = "audit"
DB = "es_bench_audit"
ROWS = int(os.environ.get("BENCH_AUDIT_ROWS", "20000"))
PER_TX = 10


def _env() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "CACHE_KEY_PREFIX": "bench-audit",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "LOG_LEVEL": "WARNING",
    }


def _database(action: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        if action == "create":
            c.execute(f'CREATE DATABASE "{DB}"')
    if action == "create":
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=_env(), check=True)  # fmt: skip


def _write(n: int, offset: int) -> None:
    from django.db import transaction

    from apps.audit.events import AuditEvent
    from apps.audit.services import audit_log_write

    for start in range(0, n, PER_TX):
        with transaction.atomic():
            for i in range(start, min(n, start + PER_TX)):
                audit_log_write(
                    event=AuditEvent.REPORT_EXPORTED,
                    actor="bench",
                    target_type="compliance.report",
                    target_id="carbon",
                    details={"format": "csv", "rows": offset + i, "content_sha256": "ab" * 32},
                )


def run() -> None:
    os.environ.update(_env())
    _database("create")
    try:
        setup_django()
        from django.db import transaction

        from apps.audit import services
        from apps.audit.models import AuditLog
        from apps.audit.selectors import audit_chain_verify

        t0 = time.perf_counter()
        _write(ROWS, 0)
        elapsed = time.perf_counter() - t0
        assert not AuditLog.objects.filter(chain_seq__isnull=True).exists()
        emit(BENCH, "write_and_seal_rows_per_s", ROWS / elapsed, "rows/s", rows=ROWS,
             rows_per_transaction=PER_TX)  # fmt: skip

        hook = services._seal_after_commit
        services._seal_after_commit = lambda: None  # the same writes, nothing chained
        try:
            t0 = time.perf_counter()
            _write(ROWS, ROWS)
            elapsed_plain = time.perf_counter() - t0
        finally:
            services._seal_after_commit = hook
        emit(BENCH, "write_unchained_rows_per_s", ROWS / elapsed_plain, "rows/s", rows=ROWS)
        emit(BENCH, "chaining_overhead_per_transaction_ms",
             1000 * (elapsed - elapsed_plain) / (ROWS / PER_TX), "ms")  # fmt: skip

        t0 = time.perf_counter()
        sealed = services.audit_chain_seal(limit=10 * ROWS, wait=True)
        emit(BENCH, "seal_batch_rows_per_s", sealed / (time.perf_counter() - t0), "rows/s",
             rows=sealed)  # fmt: skip

        with transaction.atomic():
            pass
        t0 = time.perf_counter()
        check = audit_chain_verify()
        elapsed = time.perf_counter() - t0
        emit(BENCH, "verify_rows_per_s", check.rows_checked / elapsed, "rows/s",
             rows=check.rows_checked, ok=check.ok)  # fmt: skip
    finally:
        from django.db import connections

        connections.close_all()
        _database("drop")


if __name__ == "__main__":
    run()
