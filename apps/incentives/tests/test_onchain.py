"""On the local chain: a certificate minted through the outbox, transferred by settlement and
partly claimed leaves exactly the off-chain holdings as ERC-1155 balances on EnergyToken."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.chain.models import ChainIntent
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import member_chain_address
from apps.incentives.models import Certificate
from apps.incentives.services import (
    certificate_claim,
    certificates_issue_for_hour,
    certificates_transfer_for_settlement,
)

from .factories import MemberFactory, PVMeterFactory, readings, settled_run

pytestmark = [pytest.mark.chain, pytest.mark.django_db]

T0 = datetime(2026, 6, 6, 12, tzinfo=UTC)


def test_minted_transferred_and_claimed_certificates_match_the_chain(chain):
    pv = PVMeterFactory()
    seller, buyer = pv.member, MemberFactory()
    readings(pv, T0, [250] * 4)
    (cert,) = certificates_issue_for_hour(meter=pv, hour_start=T0)
    run, _ = settled_run([(seller, buyer, T0, 300)])
    certificates_transfer_for_settlement(settlement_run=run)
    rest = Certificate.objects.get(owner=seller, status="active")
    certificate_claim(certificate_id=rest.pk, member=seller, beneficiary="Farm shop", wh=200)

    for _ in range(5):
        chain_outbox_sweep(wait_seconds=5)
        if not ChainIntent.objects.exclude(status="confirmed").exists():
            break
    intents = list(ChainIntent.objects.order_by("pk").values_list("intent", "status", "error"))
    assert [(i, s) for i, s, _ in intents] == [
        ("custody_register", "confirmed"),  # the seller's custodial account, on first use
        ("certificate_mint", "confirmed"),
        ("custody_register", "confirmed"),  # the buyer's
        ("certificate_transfer", "confirmed"),
        ("certificate_claim", "confirmed"),
    ], intents
    token = chain.contract("EnergyToken")
    assert token.functions.custodial(member_chain_address(seller)).call()
    assert token.functions.custodial(member_chain_address(buyer)).call()
    token_id = int(cert.token_id)

    def balance(member) -> int:
        return token.functions.balanceOf(member_chain_address(member), token_id).call()

    assert balance(buyer) == 300
    assert balance(seller) == 1000 - 300 - 200  # the claimed 200 Wh are burnt (retired)
    active = {m: sum(c.wh for c in Certificate.objects.filter(owner=m, status="active"))
              for m in (seller, buyer)}  # fmt: skip
    assert active == {seller: balance(seller), buyer: balance(buyer)}
