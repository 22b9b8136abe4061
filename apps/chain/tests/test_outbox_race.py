"""Races: concurrent sweeps never send an intent twice; concurrent submits of one key make one
row. Real threads, each with its own PostgreSQL connection."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.chain.models import ChainIntent
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_intent_submit

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def _race(target, n: int) -> list:
    barrier = threading.Barrier(n)
    results: list = []
    errors: list = []

    def run():
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def test_concurrent_sweeps_send_each_intent_once(chain_tx):
    chain = chain_tx
    nonce0 = chain.w3.eth.get_transaction_count(chain.duty("anchoring").address)
    for i in range(12):
        chain_intent_submit(
            intent="meter_anchor",
            payload={"interval_start": 1_700_000_000 + 900 * i, "version": 1,
                     "root": "0x" + (i + 1).to_bytes(32, "big").hex(), "leaf_count": 1},
            idempotency_key=f"race-sweep-{i}",
        )  # fmt: skip
    results = _race(chain_outbox_sweep, 3)
    assert sum(r.get("sent", 0) for r in results) == 12  # each intent sent by exactly one sweep
    chain_outbox_sweep()
    assert set(ChainIntent.objects.values_list("status", flat=True)) == {"confirmed"}
    assert chain.w3.eth.get_transaction_count(chain.duty("anchoring").address) == nonce0 + 12
    nonces = list(ChainIntent.objects.values_list("nonce", flat=True))
    assert sorted(nonces) == list(range(nonce0, nonce0 + 12))


def test_concurrent_submits_of_one_key_make_one_row(chain_tx):
    payload = {"interval_start": 1_700_000_000, "version": 1, "root": "0x" + "ab" * 32,
               "leaf_count": 1}  # fmt: skip

    def submit():
        return chain_intent_submit(
            intent="meter_anchor", payload=payload, idempotency_key="race-key"
        ).pk

    ids = _race(submit, 4)
    assert len(set(ids)) == 1
    assert ChainIntent.objects.filter(idempotency_key="race-key").count() == 1
