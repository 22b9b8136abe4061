"""Admin: the outbox monitor shows status, hash, gas and error; staff retry failed intents."""

from __future__ import annotations

import pytest

from apps.chain.models import ChainIntent
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_intent_submit
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.chain


def _anchor(key: str) -> ChainIntent:
    return chain_intent_submit(
        intent="meter_anchor",
        payload={"interval_start": 1_700_000_100, "version": 1,
                 "root": "0x" + "ab" * 32, "leaf_count": 1},
        idempotency_key=key,
    )  # fmt: skip


def test_outbox_monitor_and_retry_action(chain, client, admin_user):
    ok = _anchor("admin-ok")
    bad = _anchor("admin-replay")
    chain_outbox_sweep()
    ok.refresh_from_db()
    bad.refresh_from_db()
    assert bad.status == ChainIntent.Status.FAILED
    login_with_mfa(client, admin_user)
    page = client.get("/admin/chain/chainintent/").content.decode()
    assert "confirmed" in page and "failed" in page
    assert ok.tx_hash[:10] in page
    assert "AlreadyAnchored" in page
    detail = client.get(f"/admin/chain/chainintent/{ok.pk}/change/").content.decode()
    assert str(ok.gas_used) in detail
    response = client.post(
        "/admin/chain/chainintent/",
        {"action": "retry", "_selected_action": [bad.pk]},
        follow=True,
    )
    assert response.status_code == 200
    bad.refresh_from_db()
    assert bad.status == ChainIntent.Status.PENDING
    token = chain.contract("EnergyToken")
    chain.w3.eth.wait_for_transaction_receipt(
        token.functions.mint(chain.others[0].address, 1, 1_000, b"\x01" * 32).transact(
            {"from": chain.duty("mint").address}
        )
    )
    registry = client.get("/admin/chain/contractdeployment/").content.decode()
    assert chain.address("MeterOracle") in registry
    # the issuance caps, their use this period and the headroom, read from the chain
    assert "cap 100,000,000 Wh per 86,400 s; used 1,000; headroom 99,999,000" in registry
    assert "ESR base units per 86,400 s; used 0" in registry
    assert client.get("/admin/chain/chainintent/add/").status_code == 403
