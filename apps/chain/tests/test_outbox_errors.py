"""Bad input: wrong chain id, missing key, unreachable RPC, reverted transaction, underpriced gas.
Each leaves a clear error on the outbox row, keeps the intent retryable, and never sends twice."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from apps.chain.models import ChainIntent, ContractDeployment
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_intent_retry, chain_intent_submit
from tests.fixtures.chain import dev_account, free_port

pytestmark = pytest.mark.chain

S = ChainIntent.Status


def _anchor(key: str, version: int = 1) -> ChainIntent:
    return chain_intent_submit(
        intent="meter_anchor",
        payload={"interval_start": 1_700_000_100, "version": version,
                 "root": "0x" + "cd" * 32, "leaf_count": 2},
        idempotency_key=key,
    )  # fmt: skip


def _nonce(chain) -> int:
    return chain.w3.eth.get_transaction_count(chain.duty("anchoring").address)


def _retry_and_sweep(row: ChainIntent) -> ChainIntent:
    chain_intent_retry(intent_id=row.pk)
    chain_outbox_sweep()
    row.refresh_from_db()
    return row


def test_wrong_chain_id_is_reported_and_nothing_is_signed(chain, settings):
    nonce0 = _nonce(chain)
    row = _anchor("wrong-id")
    settings.BLOCKCHAIN_CHAIN_ID = 137
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == S.PENDING
    assert "Wrong chain id" in row.error and "137" in row.error and "31337" in row.error
    assert row.next_attempt_at is not None and not row.tx_hash
    settings.BLOCKCHAIN_CHAIN_ID = 31337
    row = _retry_and_sweep(row)
    assert row.status == S.CONFIRMED and row.error == ""
    assert _nonce(chain) == nonce0 + 1


def test_unreachable_rpc_is_reported_and_retried(chain, settings):
    row = _anchor("unreachable")
    settings.ANVIL_PORT = free_port()
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == S.PENDING
    assert "unreachable" in row.error
    settings.ANVIL_PORT = chain.node.port
    assert _retry_and_sweep(row).status == S.CONFIRMED


def test_missing_key_on_a_public_network_is_reported(chain, settings, tmp_path):
    settings.BLOCKCHAIN_NETWORK = chain.node.url  # an RPC URL: no development key fallback
    row = _anchor("no-key")
    assert row.network == "eip155:31337"
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == S.PENDING
    assert "No signing key configured for the anchoring duty" in row.error
    # a raw hex key is refused outside the local chain
    anchoring = dev_account(13)
    settings.CHAIN_DUTY_KEYS = {"anchoring": {"key": "0x" + bytes(anchoring.key).hex()}}
    _retry_and_sweep(row)
    assert row.status == S.PENDING
    assert "CHAIN_ANCHORING_KEY is a raw private key, refused outside the local chain" in row.error
    # an encrypted keystore is accepted
    keystore = tmp_path / "anchoring.json"
    keystore.write_text(json.dumps(Account.encrypt(anchoring.key, "pw", iterations=2)))
    settings.CHAIN_DUTY_KEYS = {"anchoring": {"keystore_path": str(keystore),
                                              "keystore_password": "pw"}}  # fmt: skip
    for d in chain.deployed.values():
        ContractDeployment.objects.create(
            network="eip155:31337", chain_id=31337, name=d.name, address=d.address,
            bytecode_sha256=d.bytecode_sha256,
        )  # fmt: skip
    assert _retry_and_sweep(row).status == S.CONFIRMED


def test_underpriced_gas_is_reported_then_resent_with_a_bumped_fee_once(chain, settings):
    nonce0 = _nonce(chain)
    row = _anchor("underpriced")
    settings.CHAIN_MAX_FEE_CAP_WEI = 1  # far below anvil's base fee
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == S.SIGNED
    assert row.error.startswith("Underpriced gas")
    assert _nonce(chain) == nonce0  # the node refused it: nothing sent
    first_hash = row.tx_hash
    settings.CHAIN_MAX_FEE_CAP_WEI = 0
    row = _retry_and_sweep(row)
    assert row.status == S.CONFIRMED, row.error
    assert row.tx_hash != first_hash and row.tx_hashes[0] == first_hash
    assert row.nonce == nonce0
    assert _nonce(chain) == nonce0 + 1


def test_a_transaction_reverted_on_chain_fails_the_row_with_the_reason(chain):
    # Two conflicting anchors pass simulation while blocks are not mined; the second reverts.
    chain.node.rpc("evm_setAutomine", [False])
    try:
        a = _anchor("race-a")
        b = chain_intent_submit(
            intent="meter_anchor",
            payload={**a.payload, "root": "0x" + "ee" * 32},
            idempotency_key="race-b",
        )
        chain_outbox_sweep(wait_seconds=0)
        assert set(ChainIntent.objects.values_list("status", flat=True)) == {S.SENT}
        chain.node.rpc("evm_mine")
    finally:
        chain.node.rpc("evm_setAutomine", [True])
    nonce_after_mining = _nonce(chain)
    chain_outbox_sweep()
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == S.CONFIRMED
    assert b.status == S.FAILED and b.retryable
    assert "Reverted on chain" in b.error and "AlreadyAnchored" in b.error
    assert b.gas_used and b.block_number == a.block_number
    chain_outbox_sweep()  # a failed row is never re-sent by the worker on its own
    assert _nonce(chain) == nonce_after_mining
