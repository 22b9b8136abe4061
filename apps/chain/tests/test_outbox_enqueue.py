"""Submits queue outbox sweeps on the real broker (Redis): one per burst of rows, not one per row.

An hour's certificates (thousands in the demo) are submitted in one transaction; each row used to
queue its own sweep, and the worker then ran thousands of sweeps for the same rows.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import transaction

from apps.chain.models import ChainIntent
from apps.chain.services import OUTBOX_SWEEP_QUEUED_KEY, chain_intent_submit
from apps.chain.tasks import chain_intent_process_task
from config.celery import app

pytestmark = pytest.mark.chain


def _queued_sweeps() -> int:
    with app.connection_for_read() as conn:
        return conn.default_channel.queue_declare("chain").message_count


@pytest.fixture
def broker(settings):
    """The test's own broker prefix, the chain queue empty, submits queued on commit."""
    settings.CHAIN_OUTBOX_ENQUEUE = True
    app.control.purge()
    cache.delete(OUTBOX_SWEEP_QUEUED_KEY)
    yield
    app.control.purge()
    cache.delete(OUTBOX_SWEEP_QUEUED_KEY)


def _anchor(version: int) -> dict:
    return {
        "interval_start": 1_700_000_100,
        "version": version,
        "root": "0x" + f"{version:064x}",
        "leaf_count": 3,
    }


def _submit(version: int) -> ChainIntent:
    return chain_intent_submit(
        intent="meter_anchor", payload=_anchor(version), idempotency_key=f"burst-{version}"
    )


def test_a_burst_of_submits_queues_one_sweep_that_sends_every_row(
    chain, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        rows = [_submit(version) for version in range(1, 31)]
    assert _queued_sweeps() == 1

    chain_intent_process_task(rows[0].pk)  # the queued sweep, run here
    assert set(
        ChainIntent.objects.filter(pk__in=[r.pk for r in rows]).values_list("status", flat=True)
    ) == {ChainIntent.Status.CONFIRMED}
    oracle = chain.contract("MeterOracle")
    batch = oracle.functions.batchId(1_700_000_100, 30).call()
    assert "0x" + oracle.functions.anchors(batch).call()[0].hex() == _anchor(30)["root"]

    # A row committed after that sweep started queues the next one: nothing waits for the beat.
    with django_capture_on_commit_callbacks(execute=True):
        _submit(31)
    assert _queued_sweeps() == 2


def test_without_the_guard_in_the_cache_a_submit_still_queues_a_sweep(
    chain, broker, django_capture_on_commit_callbacks
):
    """The guard expires: a worker that never took the queued sweep does not block later ones."""
    with django_capture_on_commit_callbacks(execute=True):
        _submit(1)
    cache.delete(OUTBOX_SWEEP_QUEUED_KEY)  # as after OUTBOX_SWEEP_QUEUED_SECONDS
    with django_capture_on_commit_callbacks(execute=True):
        _submit(2)
    assert _queued_sweeps() == 2
