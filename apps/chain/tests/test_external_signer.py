"""Issue 16: duty keys held by an external signer (JSON-RPC `eth_signTransaction` /
`eth_signTypedData_v4`, as clef or a remote signer in front of an HSM answers), and the settlement
batch co-signed by the settlement-approval duty. The signer here is a small stub started by the
test on a local port; the chain is the real anvil, the database the real PostgreSQL."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from eth_account import Account
from hexbytes import HexBytes

from apps.chain.keys import DEV_DUTY_INDEX, RemoteSigner, duty_signer
from apps.chain.models import ChainIntent
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_intent_submit
from tests.fixtures.chain import dev_account

pytestmark = pytest.mark.chain
S = ChainIntent.Status
B32 = "0x" + "5a" * 32


class StubSigner:
    """A JSON-RPC signer holding some keys; `mode` makes it misbehave."""

    def __init__(self, accounts) -> None:
        self.keys = {a.address.lower(): a for a in accounts}
        self.calls: list[str] = []
        self.mode = "honest"
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = {"jsonrpc": "2.0", "id": body["id"], **stub.answer(body)}
                raw = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, body: dict) -> dict:
        method, params = body["method"], body["params"]
        self.calls.append(method)
        if self.mode == "refuse":
            return {"error": {"code": -32000, "message": "request denied by the operator"}}
        if method == "eth_signTransaction":
            tx = dict(params[0])
            account = self.keys[tx.pop("from").lower()]
            if self.mode == "other_key":
                account = Account.create()
            if self.mode == "redirect":
                tx["to"] = "0x" + "66" * 20
            fields = {k: (int(v, 16) if k not in ("to", "data") else v) for k, v in tx.items()}
            signed = account.sign_transaction(fields)
            return {"result": {"raw": "0x" + bytes(signed.raw_transaction).hex(), "tx": tx}}
        if method == "eth_signTypedData_v4":
            account = self.keys[params[0].lower()]
            if self.mode == "other_key":
                account = Account.create()
            signed = account.sign_typed_data(full_message=json.loads(params[1]))
            return {"result": "0x" + bytes(signed.signature).hex()}
        return {"error": {"code": -32601, "message": f"unknown method {method}"}}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    signer = StubSigner(
        [dev_account(DEV_DUTY_INDEX[d]) for d in ("settlement", "settlement_approval")]
    )
    yield signer
    signer.close()


def _remote(settings, stub, *duties: str) -> None:
    settings.CHAIN_DUTY_KEYS = {
        d: {"signer_url": stub.url, "address": dev_account(DEV_DUTY_INDEX[d]).address}
        for d in duties
    }


def _settlement(n: int, chain) -> ChainIntent:
    a, b = chain.others[4].address, chain.others[5].address
    return chain_intent_submit(
        intent="settlement_apply",
        payload={"settlement_id": 7000 + n, "trades_root": B32, "members": [a, b],
                 "money_deltas_minor": [125, -125]},
        idempotency_key=f"ext-signer-{n}",
    )  # fmt: skip


def test_both_settlement_keys_in_an_external_signer_settle_on_chain(chain, settings, stub):
    _remote(settings, stub, "settlement", "settlement_approval")
    assert isinstance(duty_signer("settlement"), RemoteSigner)
    row = _settlement(1, chain)
    assert stub.calls == ["eth_signTypedData_v4"]  # the approval, when the batch was submitted
    assert len(row.payload["approval"]) == 132
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == S.CONFIRMED, row.error
    assert stub.calls[-1] == "eth_signTransaction"
    tx = chain.w3.eth.get_transaction(row.tx_hash)
    assert tx["from"] == dev_account(DEV_DUTY_INDEX["settlement"]).address == row.sender
    trading = chain.contract("EnergyTrading")
    assert trading.functions.balanceOf(chain.others[5].address).call() == -125
    # the same batch submitted again is the same row (idempotent, approval included)
    assert _settlement(1, chain).pk == row.pk


def test_a_changed_payload_no_longer_matches_its_approval(chain, settings):
    row = _settlement(2, chain)
    payload = {**row.payload, "money_deltas_minor": [10**9, -(10**9)]}
    ChainIntent.objects.filter(pk=row.pk).update(payload=payload)  # someone edits the database
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == S.FAILED
    assert "SettlementNotApproved" in row.error
    assert chain.contract("EnergyTrading").functions.balanceOf(payload["members"][1]).call() == 0


@pytest.mark.parametrize("mode", ["other_key", "redirect", "refuse"])
def test_a_misbehaving_signer_is_refused_and_nothing_is_sent(chain, settings, stub, mode):
    row = _settlement(3, chain)  # approved by the local development approval key
    _remote(settings, stub, "settlement")
    stub.mode = mode
    nonce = chain.w3.eth.get_transaction_count(dev_account(DEV_DUTY_INDEX["settlement"]).address)
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == S.PENDING and row.tx_hash == ""
    assert "External signer of the settlement duty" in row.error
    expected = "refused eth_signTransaction" if mode == "refuse" else "refused"
    assert expected in row.error
    assert (
        chain.w3.eth.get_transaction_count(dev_account(DEV_DUTY_INDEX["settlement"]).address)
        == nonce
    )
    # once the signer behaves, the row goes through
    stub.mode = "honest"
    ChainIntent.objects.filter(pk=row.pk).update(next_attempt_at=None)
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == S.CONFIRMED, row.error


def test_an_approval_signed_by_another_key_is_refused_at_submit(chain, settings, stub):
    _remote(settings, stub, "settlement_approval")
    stub.mode = "other_key"
    from apps.core.exceptions import ApplicationError

    with pytest.raises(ApplicationError, match="could not be approved.*signed with"):
        _settlement(4, chain)
    assert not ChainIntent.objects.filter(idempotency_key="ext-signer-4").exists()


def test_an_unreachable_signer_leaves_the_row_pending_with_the_reason(chain, settings):
    row = _settlement(5, chain)
    settings.CHAIN_DUTY_KEYS = {
        "settlement": {
            "signer_url": "http://127.0.0.1:9",
            "address": dev_account(DEV_DUTY_INDEX["settlement"]).address,
        }
    }
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == S.PENDING
    assert "External signer of the settlement duty unreachable" in row.error


def test_raw_hex_keys_are_refused_outside_the_local_chain_external_signers_are_not(
    chain, settings, stub
):
    settings.BLOCKCHAIN_NETWORK = chain.node.url  # not "local"
    settings.CHAIN_DUTY_KEYS = {
        "settlement_approval": {
            "key": HexBytes(dev_account(DEV_DUTY_INDEX["settlement_approval"]).key).hex()
        }
    }
    from apps.chain import client

    with pytest.raises(client.ChainConfigError, match="refused outside the local chain"):
        duty_signer("settlement_approval")
    _remote(settings, stub, "settlement_approval")
    assert (
        duty_signer("settlement_approval").address
        == dev_account(DEV_DUTY_INDEX["settlement_approval"]).address
    )
