"""CPU time and queries of one request to each page the load bench hits, through the Django test
client in this process: no network, no other process, so the figure does not depend on how busy
the machine is (CPU time, not wall time). bench/bench_load.py runs it against its own database
in the same run; `python -m bench.page_cost` measures the database in DATABASE_URL.

Prints per page: `cpu_ms_per_request` (median of PAGE_COST_REPEAT requests, warm cache),
`cpu_ms_first_request` (the first one, cold per-member cache), `wall_ms_per_request` (median
wall time: PostgreSQL's share included, and any wait for a busy core), `queries_per_request`
and, for the member pages, `cpu_ms_new_data`, `wall_ms_new_data` and `queries_new_data`: the
same request when new readings of the member's meters landed just before it (their cached
pages invalidated each time).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from bench.common import emit, setup_django

BENCH = "load"
REPEAT = int(os.environ.get("PAGE_COST_REPEAT", 50))

MEMBER_PAGES = (
    ("/ (dashboard)", "/"),
    ("/meters/<id>/ (meter detail)", "/meters/{meter}/"),
    ("/market/ (trading)", "/market/"),
    ("/market/statements/", "/market/statements/"),
    ("/api/meters/mine/", "/api/meters/mine/"),
    ("/api/market/orders/", "/api/market/orders/"),
    ("/api/market/trades/", "/api/market/trades/"),
    ("/api/market/statements/", "/api/market/statements/"),
)
STAFF_PAGES = (
    ("/admin/", "/admin/"),
    ("/admin/accounts/member/", "/admin/accounts/member/"),
    ("/admin/grid/connectionpoint/", "/admin/grid/connectionpoint/"),
    ("/admin/accounts/user/", "/admin/accounts/user/"),
)


def _clients():
    from django.test import Client

    from apps.accounts.models import Role, User
    from apps.demo import loader
    from tests.fixtures.core import login_with_mfa

    # A member with readings, trades and statements: the demo's first member by e-mail.
    member_user = (
        User.objects.filter(groups__name=Role.MEMBER.value, member__isnull=False)
        .order_by("email")
        .first()
    )
    member = Client()
    member.force_login(member_user)
    member.meter_id = member_user.member.meters.order_by("serial").values_list("pk", flat=True)[0]
    staff = Client()
    login_with_mfa(staff, User.objects.get(email=loader.STAFF_EMAIL))
    return member, staff


def _new_data_landed():
    """A callable that tells the member pages' caches new readings landed (None on commits
    before the cache)."""
    try:
        from apps.meters.readings.versions import readings_changed
    except ImportError:
        return None
    from apps.meters.models import Meter

    ids = list(Meter.objects.values_list("pk", flat=True))
    return lambda: readings_changed(meter_ids=ids)


def measure(repeat: int = REPEAT) -> list[dict]:
    """One record per page: path, cpu_ms (median), cpu_ms_first, queries, status, and for the
    member pages cpu_ms_new_data and queries_new_data."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member, staff = _clients()
    landed = _new_data_landed()
    if landed is not None:
        landed()  # nothing cached from an earlier run
    out = []
    for client, pages in ((member, MEMBER_PAGES), (staff, STAFF_PAGES)):
        for name, template in pages:
            path = template.format(meter=getattr(client, "meter_id", ""))
            times = []
            status = 0
            with CaptureQueriesContext(connection) as queries:
                t0 = time.process_time()
                status = client.get(path).status_code
                times.append(time.process_time() - t0)
            count = len(queries)
            walls = []
            for _ in range(repeat - 1):
                t0, w0 = time.process_time(), time.perf_counter()
                client.get(path)
                times.append(time.process_time() - t0)
                walls.append(time.perf_counter() - w0)
            with CaptureQueriesContext(connection) as warm:
                client.get(path)
            record = {
                "page": name,
                "status": status,
                "cpu_ms": 1000 * statistics.median(times),
                "wall_ms": 1000 * statistics.median(walls or [0.0]),
                "cpu_ms_first": 1000 * times[0],
                "queries_first": count,
                "queries": len(warm),
            }
            if client is member:
                fresh, fresh_walls = [], []
                for _ in range(repeat):
                    if landed is not None:
                        landed()
                    with CaptureQueriesContext(connection) as new_data:
                        t0, w0 = time.process_time(), time.perf_counter()
                        client.get(path)
                        fresh.append(time.process_time() - t0)
                        fresh_walls.append(time.perf_counter() - w0)
                record["cpu_ms_new_data"] = 1000 * statistics.median(fresh)
                record["wall_ms_new_data"] = 1000 * statistics.median(fresh_walls)
                record["queries_new_data"] = len(new_data)
            out.append(record)
    return out


def main() -> None:
    setup_django()
    for r in measure():
        extra = {"page": r["page"], "status": r["status"], "repeat": REPEAT}
        emit(BENCH, "cpu_ms_per_request", r["cpu_ms"], "ms", **extra)
        emit(BENCH, "cpu_ms_first_request", r["cpu_ms_first"], "ms", **extra)
        # Wall time includes PostgreSQL's work for the request, and any wait for a busy core.
        emit(BENCH, "wall_ms_per_request", r["wall_ms"], "ms", **extra)
        emit(BENCH, "queries_per_request", r["queries"], "queries", first=r["queries_first"],
             **extra)  # fmt: skip
        if "cpu_ms_new_data" in r:
            emit(BENCH, "cpu_ms_new_data", r["cpu_ms_new_data"], "ms", **extra)
            emit(BENCH, "wall_ms_new_data", r["wall_ms_new_data"], "ms", **extra)
            emit(BENCH, "queries_new_data", r["queries_new_data"], "queries", **extra)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
