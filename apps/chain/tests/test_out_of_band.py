"""Out-of-band detection: an indexed event that no outbox intent, staff multisig execution or
deployment of ours explains raises a staff alert; our own and members' own actions do not."""

from __future__ import annotations

import pytest

from apps.chain.deploy import role
from apps.chain.indexer import chain_events_index
from apps.chain.intents import token_id
from apps.chain.models import ChainAlert, ChainEvent
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_alerts_acknowledge, chain_intent_submit

from .test_contracts import B32, H, send, via_multisig

pytestmark = pytest.mark.chain


def test_events_nothing_of_ours_explains_raise_one_alert_each(chain):
    token, oracle = chain.contract("EnergyToken"), chain.contract("MeterOracle")
    member = chain.others[2]
    # ours: an outbox intent, a staff multisig execution, the deployment (indexed from block 0)
    chain_intent_submit(
        intent="certificate_mint",
        payload={"to": member.address, "token_id": token_id(1, H), "amount_wh": 500,
                 "certificate_hash": "0x" + "21" * 32},
        idempotency_key="oob-mint",
    )  # fmt: skip
    chain_outbox_sweep()
    via_multisig(chain, "RenewableIncentive", "setRule", 1, 10**18, True, B32)
    # a member's own transfer of certificates they hold: theirs, not an alert
    send(chain, token.functions.safeTransferFrom(member.address, chain.others[3].address,
                                                 token_id(1, H), 100, b""), member)  # fmt: skip
    chain_events_index()
    assert ChainEvent.objects.filter(name="CertificateIssued").count() == 1
    assert ChainEvent.objects.filter(name="RoleGranted").exists()  # the deployment's
    assert ChainAlert.objects.count() == 0

    # not ours: the mint key used outside the outbox, an anchor sent with the anchoring key,
    # and the guardian's emergency pause
    stolen_mint = send(chain, token.functions.mint(chain.others[4].address, token_id(1, H), 10**6,
                                                   b"\x99" * 32), chain.duty("mint"))  # fmt: skip
    send(chain, oracle.functions.anchorBatch(H, 1, B32, 1), chain.duty("anchoring"))
    send(chain, token.functions.pause(), chain.guardian)
    chain_events_index()
    alerts = {(a.event.contract, a.event.name): a for a in ChainAlert.objects.all()}
    assert set(alerts) == {
        ("EnergyToken", "CertificateIssued"),
        ("EnergyToken", "TransferSingle"),
        ("MeterOracle", "BatchAnchored"),
        ("EnergyToken", "Paused"),
    }
    issued = alerts[("EnergyToken", "CertificateIssued")]
    assert issued.event.tx_hash == "0x" + bytes(stolen_mint["transactionHash"]).hex()
    assert "the mint duty key sent it outside the outbox" in issued.message
    assert issued.sender == chain.duty("mint").address.lower()
    assert "privileged change" in alerts[("EnergyToken", "Paused")].message
    # a re-scan raises nothing new; staff acknowledge
    chain_events_index()
    assert ChainAlert.objects.count() == 4
    assert chain_alerts_acknowledge(alert_ids=[issued.pk]) == 1
    assert chain_alerts_acknowledge(alert_ids=[issued.pk]) == 0
    assert ChainAlert.objects.filter(acknowledged_at=None).count() == 3


def test_a_role_granted_outside_the_multisig_is_an_alert(chain):
    # Only the multisig holds the admin role; simulate a compromised admin path by having the
    # multisig grant a role (ours, no alert) and then the grantee grant one on its own.
    trading = chain.contract("EnergyTrading")
    rogue = chain.others[5]
    via_multisig(chain, "EnergyTrading", "grantRole", b"\x00" * 32, rogue.address)
    chain_events_index()
    assert ChainAlert.objects.count() == 0
    send(chain, trading.functions.grantRole(role("SETTLER_ROLE"), chain.others[4].address), rogue)
    chain_events_index()
    (alert,) = ChainAlert.objects.all()
    assert alert.event.name == "RoleGranted" and alert.sender == rogue.address.lower()
