"""P2P settlement moves certificates seller → buyer with lineage; green rewards per period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.incentives.models import Certificate, CertificateTransfer, Reward, RewardRule
from apps.incentives.services import (
    certificates_issue_for_hour,
    certificates_transfer_for_settlement,
    reward_grant_for_dr_performance,
)

from .factories import MemberFactory, PVMeterFactory, RewardRuleFactory, readings, settled_run

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 3, 10, tzinfo=UTC)
Q = timedelta(minutes=15)


def test_settled_trade_moves_the_sellers_certificates_for_that_hour_to_the_buyer():
    RewardRuleFactory(tokens_per_kwh=10)
    pv = PVMeterFactory()
    seller, buyer = pv.member, MemberFactory()
    readings(pv, T0, [500, 500, 500, 500])
    (cert,) = certificates_issue_for_hour(meter=pv, hour_start=T0)
    run, (t1, t2) = settled_run([(seller, buyer, T0, 300), (seller, buyer, T0 + Q, 450)])

    result = certificates_transfer_for_settlement(settlement_run=run)

    assert result["transferred_wh"] == 750
    bought = Certificate.objects.filter(owner=buyer, status="active").order_by("range_start")
    assert [(c.wh, c.trade_ref) for c in bought] == [(300, str(t1.pk)), (450, str(t2.pk))]
    # Lineage: the bought certificate descends from the seller's and keeps its readings.
    assert all(c.token_id == cert.token_id for c in bought)
    assert bought[0].source_intervals == cert.source_intervals
    assert bought[0].parent.parent == cert or bought[0].parent == cert
    seller_left = sum(c.wh for c in Certificate.objects.filter(owner=seller, status="active"))
    assert seller_left == 2000 - 750
    # Reward for the local renewable energy the buyer consumed: 750 Wh × 10/kWh = 7 tokens.
    reward = Reward.objects.get(member=buyer)
    assert (reward.basis_wh, reward.tokens) == (750, 7)
    # Idempotent: settling again moves nothing more and grants nothing more.
    again = certificates_transfer_for_settlement(settlement_run=run)
    assert again["transferred_wh"] == 0 and Reward.objects.count() == 1
    assert AuditLog.objects.filter(event=AuditEvent.CERTIFICATE_TRANSFERRED).count() == 2


def test_transfer_waits_for_an_hour_not_yet_certified_then_applies():
    pv = PVMeterFactory()
    seller, buyer = pv.member, MemberFactory()
    run, _ = settled_run([(seller, buyer, T0, 200)])
    certificates_transfer_for_settlement(settlement_run=run)
    pending = CertificateTransfer.objects.get()
    assert (pending.status, pending.transferred_wh) == ("pending", 0)

    readings(pv, T0, [100, 100, 100, 100])
    certificates_issue_for_hour(meter=pv, hour_start=T0)

    pending.refresh_from_db()
    assert (pending.status, pending.transferred_wh) == ("applied", 200)
    assert Certificate.objects.get(owner=buyer).wh == 200


def test_seller_without_enough_certificates_transfers_what_exists_and_shows_the_shortfall():
    pv = PVMeterFactory()
    seller, buyer = pv.member, MemberFactory()
    readings(pv, T0, [50, 50, 50, 50])
    certificates_issue_for_hour(meter=pv, hour_start=T0)
    run, _ = settled_run([(seller, buyer, T0, 300)])
    certificates_transfer_for_settlement(settlement_run=run)
    transfer = CertificateTransfer.objects.get()
    assert (transfer.status, transfer.wh, transfer.transferred_wh) == ("applied", 300, 200)


def test_local_renewable_reward_pays_only_for_the_green_wh_of_a_trade():
    RewardRuleFactory(tokens_per_kwh=10)
    pv = PVMeterFactory()
    seller, buyer = pv.member, MemberFactory()
    readings(pv, T0, [50, 50, 50, 50])  # 200 Wh certified: the rest of the sale is not green
    certificates_issue_for_hour(meter=pv, hour_start=T0)
    run, _ = settled_run([(seller, buyer, T0, 1200)])
    certificates_transfer_for_settlement(settlement_run=run)
    reward = Reward.objects.get(member=buyer)
    assert (reward.basis_wh, reward.tokens) == (200, 2)  # not 1,200 Wh / 12 tokens


def test_own_production_earns_rewards_by_rule_once_per_day():
    from apps.incentives.services import rewards_grant_for_production

    pv = PVMeterFactory()
    readings(pv, T0, [500] * 8)  # 4 kWh over two hours of the day
    for hour in (T0, T0 + 4 * Q):
        certificates_issue_for_hour(meter=pv, hour_start=hour)
    assert rewards_grant_for_production(day=T0.date()) == []  # no rule: nothing
    RewardRuleFactory(kind=RewardRule.Kind.OWN_PRODUCTION, tokens_per_kwh=2)
    (reward,) = rewards_grant_for_production(day=T0.date())
    assert (reward.member, reward.basis_wh, reward.tokens) == (pv.member, 4000, 8)
    assert rewards_grant_for_production(day=T0.date()) == []  # once per member and day


def test_unsettled_runs_move_nothing():
    pv = PVMeterFactory()
    readings(pv, T0, [100] * 4)
    certificates_issue_for_hour(meter=pv, hour_start=T0)
    run, _ = settled_run([(pv.member, MemberFactory(), T0, 100)], status="metered")
    assert certificates_transfer_for_settlement(settlement_run=run)["trades"] == 0


def test_dr_performance_reward_once_per_event():
    RewardRuleFactory(kind=RewardRule.Kind.DR_PERFORMANCE, tokens_per_kwh=50)
    member = MemberFactory()
    reward = reward_grant_for_dr_performance(member=member, performance_wh=2_345, event_ref="E1")
    assert (reward.tokens, reward.kind) == (117, "dr_performance")
    assert reward_grant_for_dr_performance(member=member, performance_wh=9, event_ref="E1") is None
    assert Reward.objects.filter(member=member).count() == 1
