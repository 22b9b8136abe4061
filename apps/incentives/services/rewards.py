"""Green rewards: tokens per kWh of local renewable energy consumed (bought from members in P2P
settlement) and per kWh of demand-response performance, minted through RenewableIncentive."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.incentives import chain_bridge
from apps.incentives.models import Certificate, CertificateTransfer, Reward, RewardRule
from apps.market.models import SettlementRun
from apps.market.selectors import settled_trades

if TYPE_CHECKING:
    from apps.market.models import SettlementRun


def reward_rule_active(*, kind: str, at: datetime) -> RewardRule | None:
    return (
        RewardRule.objects.filter(kind=kind, valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .order_by("-valid_from")
        .first()
    )


def reward_tokens(*, basis_wh: int, tokens_per_kwh: int) -> int:
    """Whole reward tokens for `basis_wh`: floored once per member and period."""
    return max(0, basis_wh) * tokens_per_kwh // 1000


def _grant(
    *,
    member,
    rule: RewardRule,
    period_ref: str,
    basis_wh: int,
    period_start: datetime | None,
    period_end: datetime | None,
    actor: Actor,
) -> Reward | None:
    if Reward.objects.filter(member=member, kind=rule.kind, period_ref=period_ref).exists():
        return None  # once per member, kind and period: a retry changes nothing
    tokens = reward_tokens(basis_wh=basis_wh, tokens_per_kwh=rule.tokens_per_kwh)
    reward = Reward.objects.create(
        member=member,
        rule=rule,
        kind=rule.kind,
        period_ref=period_ref,
        period_start=period_start,
        period_end=period_end,
        basis_wh=basis_wh,
        tokens=tokens,
    )
    address = chain_bridge.member_address(member)
    if address and basis_wh > 0:
        reward.chain_intent_ref = chain_bridge.submit(
            intent="reward_mint",
            payload={
                "award_id": reward.pk,
                "member": address,
                "rule_id": rule.pk,
                "basis_wh": basis_wh,
            },
            idempotency_key=f"reward_mint:{reward.pk}",
        )
        reward.save(update_fields=["chain_intent_ref"])
    audit_log_write(
        event=AuditEvent.REWARD_GRANTED,
        actor=actor,
        target=reward,
        details={
            "member": member.membership_number,
            "kind": rule.kind,
            "basis_wh": basis_wh,
            "tokens": tokens,
            "period": period_ref,
        },
    )
    return reward


@transaction.atomic
def rewards_compute_for_settlement(
    *, settlement_run: SettlementRun, actor: Actor = None
) -> list[Reward]:
    """Local-renewable rewards for one settlement period: each buyer's *green* Wh bought from
    members — the Wh their trades carried certificates for (the certificate transfers of this
    run, applied just before by `certificates_transfer_for_settlement`). Energy a seller had no
    certificate for (e.g. from a battery charged from the grid) earns nothing."""
    starts = [t.interval_start for t in settled_trades(settlement_run=settlement_run)]
    bought: dict[int, int] = defaultdict(int)
    for buyer_id, wh in CertificateTransfer.objects.filter(
        settlement_ref=str(settlement_run.pk)
    ).values_list("buyer_id", "transferred_wh"):
        if wh > 0:
            bought[buyer_id] += wh
    if not bought or not starts:
        return []
    at = min(starts)
    rule = reward_rule_active(kind=RewardRule.Kind.LOCAL_RENEWABLE, at=at)
    if rule is None:
        return []
    ref = f"settlement:{settlement_run.pk}"
    members = Member.objects.in_bulk(list(bought))
    granted = []
    for member_id in sorted(bought):
        reward = _grant(
            member=members[member_id],
            rule=rule,
            period_ref=ref,
            basis_wh=bought[member_id],
            period_start=at,
            period_end=max(starts),
            actor=actor,
        )
        if reward is not None:
            granted.append(reward)
    return granted


@transaction.atomic
def reward_grant_for_dr_performance(
    *,
    member,
    performance_wh: int,
    event_ref: str,
    at: datetime | None = None,
    actor: Actor = None,
) -> Reward | None:
    """Reward a member's measured demand-response performance (Wh delivered vs baseline).

    Called by the grid app after performance is measured. Idempotent per (member, event_ref).
    Returns None when no DR rule is active or the reward was already granted.
    """
    if performance_wh < 0:
        raise ApplicationError(
            "Performance cannot be negative.", {"performance_wh": performance_wh}
        )
    at = at or timezone.now()
    rule = reward_rule_active(kind=RewardRule.Kind.DR_PERFORMANCE, at=at)
    if rule is None:
        return None
    return _grant(
        member=member,
        rule=rule,
        period_ref=f"dr:{event_ref}",
        basis_wh=performance_wh,
        period_start=at,
        period_end=None,
        actor=actor,
    )


@transaction.atomic
def rewards_grant_for_production(*, day: date, actor: Actor = None) -> list[Reward]:
    """Own-production rewards for one UTC day: each member's certified Wh of their own plants
    (shared plants excluded: their certificates go to the shareholders, not a producer),
    net of downward corrections. Once per member and day; none when no rule is active."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    rule = reward_rule_active(kind=RewardRule.Kind.OWN_PRODUCTION, at=start)
    if rule is None:
        return []
    produced: dict[int, int] = defaultdict(int)
    rows = (
        Certificate.objects.filter(
            production_start__gte=start,
            production_start__lt=end,
            shared_asset__isnull=True,
            device__member__isnull=False,
        )
        .filter(
            Q(parent__isnull=True)
            | Q(status=Certificate.Status.CANCELLED, cancelled_reason="downward correction")
        )
        .values_list("device__member_id", "parent_id", "range_start", "range_end")
    )
    for member_id, parent_id, r0, r1 in rows:
        produced[member_id] += (r1 - r0) if parent_id is None else -(r1 - r0)
    members = Member.objects.in_bulk([m for m, wh in produced.items() if wh > 0])
    granted = []
    for member_id in sorted(members):
        reward = _grant(
            member=members[member_id],
            rule=rule,
            period_ref=f"production:{day.isoformat()}",
            basis_wh=produced[member_id],
            period_start=start,
            period_end=end,
            actor=actor,
        )
        if reward is not None:
            granted.append(reward)
    return granted
