"""CPU time and queries of one request to each page the load bench hits, through the Django test
client in this process: no network, no other process, so the figure does not depend on how busy
the machine is (CPU time, not wall time). bench/bench_load.py runs it against its own database
in the same run; `python -m bench.page_cost` measures the database in DATABASE_URL.

Prints per page: `cpu_ms_per_request` (median of PAGE_COST_REPEAT requests, warm cache),
`cpu_ms_first_request` (the first one, cold per-member cache) and `queries_per_request`.
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
    staff = Client()
    login_with_mfa(staff, User.objects.get(email=loader.STAFF_EMAIL))
    return member, staff


def measure(repeat: int = REPEAT) -> list[dict]:
    """One record per page: path, cpu_ms (median), cpu_ms_first, queries, status."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member, staff = _clients()
    out = []
    for client, pages in ((member, MEMBER_PAGES), (staff, STAFF_PAGES)):
        for name, path in pages:
            times = []
            status = 0
            with CaptureQueriesContext(connection) as queries:
                t0 = time.process_time()
                status = client.get(path).status_code
                times.append(time.process_time() - t0)
            count = len(queries)
            for _ in range(repeat - 1):
                t0 = time.process_time()
                client.get(path)
                times.append(time.process_time() - t0)
            with CaptureQueriesContext(connection) as warm:
                client.get(path)
            out.append(
                {
                    "page": name,
                    "status": status,
                    "cpu_ms": 1000 * statistics.median(times),
                    "cpu_ms_first": 1000 * times[0],
                    "queries_first": count,
                    "queries": len(warm),
                }
            )
    return out


def main() -> None:
    setup_django()
    for r in measure():
        extra = {"page": r["page"], "status": r["status"], "repeat": REPEAT}
        emit(BENCH, "cpu_ms_per_request", r["cpu_ms"], "ms", **extra)
        emit(BENCH, "cpu_ms_first_request", r["cpu_ms_first"], "ms", **extra)
        emit(BENCH, "queries_per_request", r["queries"], "queries", first=r["queries_first"],
             **extra)  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
