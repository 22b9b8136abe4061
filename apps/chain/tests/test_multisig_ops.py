"""Staff multisig operations from the back-office (local chain: development signers execute)."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_intent_submit
from apps.incentives.models import RewardRule

pytestmark = pytest.mark.chain


def test_reward_rules_are_synced_through_the_multisig_and_awards_then_work(chain):
    rule = RewardRule.objects.create(
        kind=RewardRule.Kind.LOCAL_RENEWABLE, tokens_per_kwh=2,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    member = chain.others[0].address
    out = StringIO()
    call_command("chain_multisig", "reward-rules-sync", stdout=out)
    assert '"function": "setRule"' in out.getvalue()
    inc = chain.contract("RenewableIncentive")
    assert inc.functions.rules(rule.pk).call()[:2] == [2 * 10**18, True]
    again = StringIO()
    call_command("chain_multisig", "reward-rules-sync", stdout=again)
    assert "nothing to change" in again.getvalue()
    row = chain_intent_submit(
        intent="reward_mint",
        payload={"award_id": 1, "member": member, "rule_id": rule.pk, "basis_wh": 1_500},
        idempotency_key="reward-1",
    )
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == "confirmed", row.error
    assert inc.functions.accrued(member).call() == 3 * 10**18


def test_emergency_pause_and_unpause(chain):
    call_command("chain_multisig", "pause", "MeterOracle", stdout=StringIO())
    assert chain.contract("MeterOracle").functions.paused().call()
    row = chain_intent_submit(
        intent="meter_anchor",
        payload={"interval_start": 1_700_000_100, "version": 1, "root": "0x" + "ab" * 32,
                 "leaf_count": 1},
        idempotency_key="paused",
    )  # fmt: skip
    chain_outbox_sweep()
    row.refresh_from_db()
    assert row.status == "failed" and "EnforcedPause" in row.error
    call_command("chain_multisig", "unpause", "MeterOracle", stdout=StringIO())
    assert not chain.contract("MeterOracle").functions.paused().call()
