"""The incentives app answers market settlement and grid DR measurement through their signals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.chain.models import ChainIntent
from apps.chain.services import member_chain_address
from apps.grid.models import DRParticipation
from apps.grid.signals import DRRewardGranted, dr_performance_measured
from apps.incentives import chain_bridge
from apps.incentives.models import Certificate, Reward, RewardRule
from apps.incentives.services import certificates_issue_for_hour
from apps.market.models import SettlementRun
from apps.market.signals import settlement_run_settled

from .factories import MemberFactory, PVMeterFactory, RewardRuleFactory, readings, settled_run

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 3, 10, tzinfo=UTC)


def test_a_settled_run_moves_certificates_and_grants_rewards():
    RewardRuleFactory(tokens_per_kwh=10)
    pv = PVMeterFactory()
    seller, buyer = pv.member, MemberFactory()
    readings(pv, T0, [500, 500, 500, 500])
    certificates_issue_for_hour(meter=pv, hour_start=T0)
    run, (trade,) = settled_run([(seller, buyer, T0, 400)])

    settlement_run_settled.send(sender=SettlementRun, run=run, actor=None)

    bought = Certificate.objects.get(owner=buyer, status="active")
    assert (bought.wh, bought.trade_ref) == (400, str(trade.pk))
    assert Reward.objects.get(member=buyer).basis_wh == 400


def test_measured_dr_performance_is_rewarded_and_the_grant_returned():
    RewardRuleFactory(kind=RewardRule.Kind.DR_PERFORMANCE, tokens_per_kwh=50)
    member = MemberFactory()

    responses = dr_performance_measured.send(
        sender=DRParticipation,
        member=member,
        performance_wh=2_000,
        event_ref="7:3",
        at=T0,
        actor=None,
    )

    reward = Reward.objects.get(member=member)
    assert (reward.tokens, reward.period_ref) == (100, "dr:7:3")
    granted = [r for _, r in responses if isinstance(r, DRRewardGranted)]
    assert granted == [DRRewardGranted(tokens=100, ref=f"incentives.reward:{reward.pk}")]


def test_chain_bridge_uses_the_chain_apps_address_and_outbox():
    member = MemberFactory(wallet_address="")
    # No linked wallet: the custodial address of the chain app, never an empty one.
    assert chain_bridge.member_address(member) == member_chain_address(member)
    assert chain_bridge.member_address(member).startswith("0x")

    ref = chain_bridge.submit(
        intent="reward_mint",
        payload={"award_id": 1, "member": member_chain_address(member), "rule_id": 1,
                 "basis_wh": 1000},
        idempotency_key="reward_mint:test",
    )  # fmt: skip

    assert ref == str(ChainIntent.objects.get(idempotency_key="reward_mint:test").pk)
