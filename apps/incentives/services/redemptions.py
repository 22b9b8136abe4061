"""Reward tokens that redeem: a member turns their reward tokens into a credit on their next
invoice, and the tokens are burned on chain — exactly once, also under concurrent requests.

`reward_redeem` locks the member's redeemable-balance row (`RewardAccount`), checks the balance,
records the `Redemption` and queues the burn (`reward_redeem` intent: RenewableIncentive
`redeemFor`, once per redemption id, within the redemption cap) in the same transaction.
`redemptions_confirm` moves a redemption to *burned* once its intent is confirmed; the billing
run credits burned redemptions on the invoice (`redemptions_credit`).
"""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.chain.multisig import TOKEN_DECIMALS
from apps.chain.selectors import chain_intents_confirmed
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.incentives import chain_bridge
from apps.incentives.lock_objects import redemptions_lock, reward_account_lock
from apps.incentives.models import Redemption, Reward


@transaction.atomic
def reward_redeem(*, member: Member, tokens: int, actor: Actor = None) -> Redemption:
    """Redeem `tokens` of the member's reward tokens for a credit on their next invoice."""
    if tokens <= 0:
        raise ApplicationError("Redeem at least one token.", {"tokens": tokens})
    account = reward_account_lock(member.pk)  # two requests at once: the second waits here
    # Read under the lock: the balance row's redeemed tokens are those of every earlier request.
    granted = (
        Reward.objects.filter(member=member)
        .exclude(chain_intent_ref="")
        .aggregate(t=Sum("tokens"))["t"]
    )
    available = int(granted or 0) - account.redeemed_tokens
    if tokens > available:
        raise ApplicationError(
            f"You have {available} redeemable token(s); {tokens} requested.",
            {"tokens": tokens, "available": available},
        )
    address = chain_bridge.member_address(member)
    if not address:
        raise ApplicationError("Your rewards are not on chain yet.", {"member": member.pk})
    account.redeemed_tokens += tokens
    account.save(update_fields=["redeemed_tokens", "updated_at"])
    redemption = Redemption.objects.create(member=member, tokens=tokens)
    redemption.chain_intent_ref = chain_bridge.submit(
        intent="reward_redeem",
        payload={
            "redemption_id": redemption.pk,
            "member": address,
            "amount": tokens * 10**TOKEN_DECIMALS,
        },
        idempotency_key=f"reward_redeem:{redemption.pk}",
    )
    redemption.save(update_fields=["chain_intent_ref"])
    audit_log_write(
        event=AuditEvent.REWARD_REDEEMED,
        actor=actor,
        target=redemption,
        details={
            "member": member.membership_number,
            "tokens": tokens,
            "intent": redemption.chain_intent_ref,
        },
    )
    return redemption


@transaction.atomic
def redemptions_confirm(*, actor: Actor = None, now: datetime | None = None) -> int:
    """requested → burned for every redemption whose burn is confirmed on chain."""
    now = now or timezone.now()
    pending = redemptions_lock(status=Redemption.Status.REQUESTED)
    confirmed = chain_intents_confirmed(
        intent_ids=[int(r.chain_intent_ref) for r in pending if r.chain_intent_ref.isdigit()]
    )
    done = 0
    for redemption in pending:
        if redemption.chain_intent_ref.isdigit() and int(redemption.chain_intent_ref) in confirmed:
            redemption.burned_at = now
            redemption.transition_to(
                Redemption.Status.BURNED, actor=actor, update_fields=["burned_at"]
            )
            done += 1
    return done


@transaction.atomic
def redemptions_credit(
    *, month: date, end: datetime, member_ids: list[int], actor: Actor = None
) -> int:
    """burned → credited for the redemptions a billing run of `month` put on these members'
    invoices (called inside the run's transaction)."""
    burned = [
        r
        for r in redemptions_lock(status=Redemption.Status.BURNED)
        if r.member_id in set(member_ids) and r.burned_at is not None and r.burned_at < end
    ]
    for redemption in burned:
        redemption.credited_month = month
        redemption.transition_to(
            Redemption.Status.CREDITED, actor=actor, update_fields=["credited_month"]
        )
    return len(burned)
