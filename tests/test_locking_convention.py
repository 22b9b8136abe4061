"""Row locks go through the per-app `lock_objects` helpers, which lock in primary-key order.

The source scan fails on any `select_for_update` outside apps/core/locks.py and the
`apps/<app>/lock_objects.py` modules; the database tests check what the helpers lock and in
which order, and that `skip_locked` / `nowait` behave as PostgreSQL promises.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.chain.lock_objects import pending_intents_lock_for_signing
from apps.chain.models import ChainIntent
from apps.core.locks import lock_first, lock_row, lock_rows
from apps.incentives.lock_objects import (
    active_certificates_lock_for_correction,
    active_certificates_lock_for_transfer,
)
from apps.market.lock_objects import open_orders_lock_for_clearing

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {Path("apps/core/locks.py")}


def _is_lock_module(relative: Path) -> bool:
    return relative in ALLOWED or (
        len(relative.parts) == 3
        and relative.parts[0] == "apps"
        and relative.name == "lock_objects.py"
    )


def select_for_update_lines(source: str) -> list[int]:
    """Lines of `source` that use `.select_for_update` (a call or a reference to it)."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "select_for_update"
    )


def test_no_select_for_update_outside_the_lock_modules():
    offenders = []
    for folder in ("apps", "config", "tests", "bench", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if _is_lock_module(relative):
                continue
            for line in select_for_update_lines(path.read_text()):
                offenders.append(f"{relative}:{line}")
    assert offenders == [], (
        "Lock rows with a helper of apps/<app>/lock_objects.py (built on apps/core/locks.py), "
        f"not select_for_update(): {offenders}"
    )


def test_the_scan_finds_a_bare_select_for_update():
    violation = (
        "def order_cancel(order_id):\n"
        "    return Order.objects.select_for_update().get(pk=order_id)\n"
    )
    assert select_for_update_lines(violation) == [2]
    assert not _is_lock_module(Path("apps/market/services/orders.py"))
    assert _is_lock_module(Path("apps/market/lock_objects.py"))


def _locking_sql(call) -> str:
    with CaptureQueriesContext(connection) as ctx:
        call()
    assert len(ctx.captured_queries) == 1, ctx.captured_queries
    return ctx.captured_queries[0]["sql"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("call", "table"),
    [
        (lambda: active_certificates_lock_for_correction(7), "incentives_certificate"),
        (
            lambda: active_certificates_lock_for_transfer(seller_id=1, hour_start=timezone.now()),
            "incentives_certificate",
        ),
        (lambda: open_orders_lock_for_clearing(timezone.now()), "market_order"),
        (lambda: pending_intents_lock_for_signing([3, 1, 2]), "chain_chainintent"),
    ],
    ids=["certificates-correction", "certificates-transfer", "orders-clearing", "intents-sign"],
)
def test_multi_row_locks_take_their_rows_in_primary_key_order(call, table):
    """A correction used to lock certificates newest range first and a transfer by token and
    range: two such transactions could each hold a row the other waits for."""
    sql = _locking_sql(call)
    assert sql.rstrip().endswith("FOR UPDATE")
    assert f'ORDER BY "{table}"."id" ASC' in sql


def _intent(key: str) -> ChainIntent:
    return ChainIntent.objects.create(
        intent="meter_anchor", payload={}, idempotency_key=key, network="anvil"
    )


def _hold_lock(pk: int, locked: threading.Event, release: threading.Event) -> threading.Thread:
    def hold():
        try:
            with transaction.atomic():
                lock_row(ChainIntent.objects.all(), pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(10)
    return thread


@pytest.mark.django_db(transaction=True)
def test_skip_locked_leaves_out_a_held_row_and_nowait_refuses_to_wait():
    first, second, third = (_intent(f"lock-{i}") for i in range(3))
    locked, release = threading.Event(), threading.Event()
    holder = _hold_lock(second.pk, locked, release)
    try:
        with transaction.atomic():
            rows = lock_rows(
                ChainIntent.objects.all(), [third.pk, second.pk, first.pk], skip_locked=True
            )
            assert [r.pk for r in rows] == [first.pk, third.pk]
            assert lock_first(ChainIntent.objects.filter(pk=second.pk), skip_locked=True) is None
        with pytest.raises(DatabaseError), transaction.atomic():
            lock_row(ChainIntent.objects.all(), second.pk, nowait=True)
    finally:
        release.set()
        holder.join(30)
