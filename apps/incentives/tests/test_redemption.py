"""Acceptance 5 (issue 19): redeeming reward tokens twice at the same time credits once, and the
on-chain burn equals the credit on the invoice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from apps.billing.models import Invoice
from apps.billing.services import billing_run
from apps.billing.tests.factories import SupplyContractFactory, SupplyTariffVersionFactory
from apps.chain.models import ChainIntent
from apps.chain.multisig import TOKEN_DECIMALS
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import member_chain_address
from apps.chain.tests.test_contracts import via_multisig
from apps.core.exceptions import ApplicationError
from apps.incentives.models import Redemption, RewardRule
from apps.incentives.services import (
    redemptions_confirm,
    reward_grant_for_dr_performance,
    reward_redeem,
)
from apps.market.tests.factories import TariffFactory

from .factories import MemberFactory, RewardRuleFactory

pytestmark = [pytest.mark.chain]


def _outbox_until_confirmed() -> None:
    for _ in range(5):
        chain_outbox_sweep(wait_seconds=5)
        if not ChainIntent.objects.exclude(status="confirmed").exists():
            return
    raise AssertionError(list(ChainIntent.objects.values_list("intent", "status", "error")))


def test_two_concurrent_redemptions_credit_once_and_the_burn_equals_the_credit(chain_tx):
    rule = RewardRuleFactory(kind=RewardRule.Kind.DR_PERFORMANCE, tokens_per_kwh=50)
    via_multisig(chain_tx, "RenewableIncentive", "setRule", rule.pk,
                 50 * 10**TOKEN_DECIMALS, True, bytes(32))  # fmt: skip
    member = MemberFactory()
    reward = reward_grant_for_dr_performance(member=member, performance_wh=2_345, event_ref="E1")
    assert reward.tokens == 117
    _outbox_until_confirmed()
    incentive = chain_tx.contract("RenewableIncentive")
    address = member_chain_address(member)
    accrued_before = incentive.functions.accrued(address).call()
    assert accrued_before >= 117 * 10**TOKEN_DECIMALS

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def redeem() -> None:
        try:
            barrier.wait()
            reward_redeem(member=member, tokens=117)
            outcomes.append("redeemed")
        except ApplicationError as exc:
            outcomes.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=redeem) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["You have 0 redeemable token(s); 117 requested.", "redeemed"]
    (redemption,) = Redemption.objects.all()

    _outbox_until_confirmed()
    assert redemptions_confirm() == 1
    burned = accrued_before - incentive.functions.accrued(address).call()
    assert burned == 117 * 10**TOKEN_DECIMALS
    assert incentive.functions.redeemed(redemption.pk).call()

    # The burned tokens are credited on the next invoice, once.
    TariffFactory()  # the market's tariff (the statement's VAT rate)
    version = SupplyTariffVersionFactory(reward_credit=Decimal("0.050000"))
    SupplyContractFactory(member=member, tariff=version.tariff)
    month = redemption.requested_at.strftime("%Y-%m")
    first = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC)
    after = first.replace(year=first.year + (first.month == 12), month=first.month % 12 + 1, day=2)
    billing_run(period=month, now=after)
    line = Invoice.objects.get(member=member).lines.get(kind="reward")
    assert line.quantity * 10**TOKEN_DECIMALS == burned
    assert line.net == Decimal("-5.85")  # 117 tokens × 0.05
    redemption.refresh_from_db()
    assert redemption.status == "credited"
