"""The transaction outbox against the real anvil node."""

from __future__ import annotations

import pytest

from apps.chain.models import ChainIntent
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_intent_retry, chain_intent_submit
from apps.core.exceptions import ApplicationError

pytestmark = pytest.mark.chain

ROOT = "0x" + "ab" * 32


def _anchor(start: int = 1_700_000_100, version: int = 1, root: str = ROOT) -> dict:
    return {"interval_start": start, "version": version, "root": root, "leaf_count": 3}


def test_submit_is_idempotent_on_the_key(chain):
    a = chain_intent_submit(intent="meter_anchor", payload=_anchor(), idempotency_key="k-1")
    b = chain_intent_submit(intent="meter_anchor", payload=_anchor(), idempotency_key="k-1")
    assert a.pk == b.pk
    assert ChainIntent.objects.count() == 1
    with pytest.raises(ApplicationError):
        chain_intent_submit(
            intent="meter_anchor", payload=_anchor(version=2), idempotency_key="k-1"
        )


def test_invalid_payload_is_refused_before_the_outbox(chain):
    with pytest.raises(ApplicationError, match="Invalid meter_anchor payload"):
        chain_intent_submit(
            intent="meter_anchor", payload={**_anchor(), "root": "0x12"}, idempotency_key="k-2"
        )
    with pytest.raises(ApplicationError, match="unknown intent"):
        chain_intent_submit(intent="nope", payload={}, idempotency_key="k-3")
    assert not ChainIntent.objects.exists()


def test_an_intent_goes_pending_to_confirmed_and_lands_on_chain(chain):
    row = chain_intent_submit(intent="meter_anchor", payload=_anchor(), idempotency_key="k-4")
    counts = chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == ChainIntent.Status.CONFIRMED, row.error
    assert counts["confirmed"] == 1
    assert row.gas_used and row.block_number and row.tx_hash.startswith("0x")
    oracle = chain.contract("MeterOracle")
    batch = oracle.functions.batchId(1_700_000_100, 1).call()
    assert "0x" + oracle.functions.anchors(batch).call()[0].hex() == ROOT


def test_a_reverting_intent_fails_with_the_reason_and_sends_nothing(chain):
    first = chain_intent_submit(intent="meter_anchor", payload=_anchor(), idempotency_key="a")
    chain_outbox_sweep()
    nonce_before = chain.w3.eth.get_transaction_count(chain.duty("anchoring").address)
    replay = chain_intent_submit(intent="meter_anchor", payload=_anchor(), idempotency_key="b")
    chain_outbox_sweep()
    replay.refresh_from_db()
    first.refresh_from_db()
    assert first.status == ChainIntent.Status.CONFIRMED
    assert replay.status == ChainIntent.Status.FAILED
    assert "AlreadyAnchored" in replay.error
    assert replay.retryable
    assert chain.w3.eth.get_transaction_count(chain.duty("anchoring").address) == nonce_before
    chain_intent_retry(intent_id=replay.pk)
    replay.refresh_from_db()
    assert replay.status == ChainIntent.Status.PENDING


def test_confirmation_depth_is_configurable(chain, settings):
    settings.CHAIN_CONFIRMATIONS = 3
    row = chain_intent_submit(intent="meter_anchor", payload=_anchor(), idempotency_key="depth")
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == ChainIntent.Status.MINED
    chain.node.rpc("evm_mine")
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == ChainIntent.Status.MINED  # 2 blocks deep
    chain.node.rpc("evm_mine")
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == ChainIntent.Status.CONFIRMED and row.confirmed_at


def test_an_intent_depending_on_an_unmined_one_waits_instead_of_failing(chain):
    """A DR commitment simulated before its event's transaction is mined reverts (UnknownEvent):
    it stays pending and goes through once the event is on chain."""
    member = chain.others[0].address
    chain.node.rpc("evm_setAutomine", [False])
    try:
        event = chain_intent_submit(
            intent="dr_event_record",
            payload={"event_id": 5, "modification": 1, "start": 1_767_225_600,
                     "end": 1_767_229_200, "target_w": 9_000, "signal_hash": ROOT},
            idempotency_key="dr-event-5",
        )  # fmt: skip
        commitment = chain_intent_submit(
            intent="dr_commitment_record",
            payload={"event_id": 5, "member": member, "committed_w": 2_000},
            idempotency_key="dr-commit-5",
        )
        counts = chain_outbox_sweep(wait_seconds=0)
        commitment.refresh_from_db()
        assert counts["deferred"] == 1
        assert commitment.status == ChainIntent.Status.PENDING
        assert "UnknownEvent(5)" in commitment.error and "unconfirmed" in commitment.error
        chain.node.rpc("evm_mine")
    finally:
        chain.node.rpc("evm_setAutomine", [True])
    chain_outbox_sweep()
    event.refresh_from_db()
    commitment.refresh_from_db()
    assert event.status == commitment.status == ChainIntent.Status.CONFIRMED
    assert chain.contract("GridBalancer").functions.commitmentW(5, member).call() == 2_000
