"""The incentives app's answers to signals of the apps below it (market settlement, grid DR).

Connected in `IncentivesConfig.ready`; each receiver calls one service inside the sender's
transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.accounts.models import Member
from apps.grid.signals import DRRewardGranted
from apps.incentives.services import (
    certificates_transfer_for_settlement,
    reward_grant_for_dr_performance,
)
from apps.market.models import SettlementRun


def on_settlement_run_settled(
    sender: Any, *, run: SettlementRun, actor: Any = None, **kwargs: Any
) -> None:
    """Certificates move seller → buyer with P2P settlement (and the period's rewards)."""
    certificates_transfer_for_settlement(settlement_run=run, actor=actor)


def on_dr_performance_measured(
    sender: Any,
    *,
    member: Member,
    performance_wh: int,
    event_ref: str,
    at: datetime,
    actor: Any = None,
    **kwargs: Any,
) -> DRRewardGranted | None:
    """Reward a site's measured demand-response performance."""
    reward = reward_grant_for_dr_performance(
        member=member, performance_wh=performance_wh, event_ref=event_ref, at=at, actor=actor
    )
    if reward is None:
        return None
    return DRRewardGranted(tokens=reward.tokens, ref=f"incentives.reward:{reward.pk}")
