"""Mirror the reward rules on chain (RenewableIncentive) through the staff multisig.

This lives in incentives, not in chain: the chain app sits below incentives in the app layers
(docs/architecture.md) and knows nothing of reward rules; incentives owns them and calls the
chain app's multisig.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.chain import client
from apps.chain.multisig import TOKEN_DECIMALS, Proposal, multisig_call
from apps.incentives.models import RewardRule


def reward_rules_sync(*, actor: Any = None) -> list[Proposal]:
    """Mirror the reward rules into RenewableIncentive (rule id = RewardRule pk, rate =
    tokens_per_kwh whole tokens → base units). Only rules that differ are proposed."""
    inc = client.contract("RenewableIncentive")
    now = timezone.now()
    out = []
    for rule in RewardRule.objects.order_by("pk"):
        rate = int(rule.tokens_per_kwh) * 10**TOKEN_DECIMALS
        active = rule.valid_to is None or rule.valid_to > now
        terms = client.web3().keccak(text=f"{rule.kind}:{rule.description}")
        on_chain = inc.functions.rules(rule.pk).call()
        if (int(on_chain[0]), bool(on_chain[1])) == (rate, active):
            continue
        out.append(
            multisig_call(
                contract="RenewableIncentive",
                function="setRule",
                args=(rule.pk, rate, active, bytes(terms)),
                actor=actor,
            )
        )
    return out
