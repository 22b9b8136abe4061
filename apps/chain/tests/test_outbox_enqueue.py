"""What the chain outbox costs when there is little or nothing to do.

Submits queue outbox sweeps on the real broker (Redis): one per burst of rows, not one per row (an
hour's certificates, thousands in the demo, are submitted in one transaction; each row used to
queue its own sweep). The periodic sweep with nothing due asks the node nothing.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request

import pytest
from django.core.cache import cache
from django.db import transaction

from apps.chain.models import ChainIntent
from apps.chain.outbox import chain_outbox_sweep
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


class _CountingProxy:
    """A JSON-RPC pass-through to the test's anvil node that records every method asked."""

    def __init__(self, target: str) -> None:
        self.methods: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                calls = json.loads(body)
                for call in calls if isinstance(calls, list) else [calls]:
                    proxy.methods.append(call["method"])
                request = urllib.request.Request(
                    target, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    answer = response.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def rpc_calls(chain, settings):
    proxy = _CountingProxy(chain.node.url)
    settings.ANVIL_PORT = proxy.port
    yield proxy.methods
    proxy.server.shutdown()


def test_a_sweep_with_nothing_to_do_asks_the_node_nothing(chain, rpc_calls):
    row = _submit(1)
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == ChainIntent.Status.CONFIRMED, row.error
    assert "eth_sendRawTransaction" in rpc_calls  # the proxy carries the sweep's calls

    rpc_calls.clear()
    for _ in range(3):  # as the beat every 5 s while nothing is queued
        counts = chain_outbox_sweep()
    assert rpc_calls == []
    assert counts["sent"] == counts["confirmed"] == 0
