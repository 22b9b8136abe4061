"""The standing claim instruction: each member's certificates are claimed hourly against their
own consumption (EnergyTag hourly matching), unless the member opted out.

A certificate for production hour H only covers validated consumption in hour H; what is already
claimed for H is subtracted first, so a re-run claims nothing twice and a later run claims only
what new certificates (a late P2P transfer, an upward correction) or new consumption allow.
Lowest-emission certificates go first; a certificate larger than what is left is split and only
the part needed is claimed (the rest stays active).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F, Sum

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.incentives import energy
from apps.incentives.lock_objects import claim_instruction_lock
from apps.incentives.models import Certificate, ClaimInstruction
from apps.incentives.services.certificates import certificate_claim


@dataclass
class AutoClaimSummary:
    members: int = 0
    certificates: int = 0
    wh: int = 0
    skipped: int = 0  # certificates that changed under us (claimed or moved meanwhile)


def auto_claim_beneficiary(member: Member) -> str:
    """The beneficiary named on auto-claims: the member's number, not their name (no personal
    data goes on chain or into the registry by a standing instruction)."""
    return f"Member {member.membership_number} (own consumption, standing instruction)"


@transaction.atomic
def claim_instruction_set(*, member: Member, auto_claim: bool, actor: Actor = None):
    """Turn a member's standing claim instruction on or off (audit-logged)."""
    instruction = claim_instruction_lock(member.pk)
    if instruction.auto_claim != auto_claim:
        instruction.auto_claim = auto_claim
        instruction.save(update_fields=["auto_claim", "updated_at"])
    audit_log_write(
        event=AuditEvent.CLAIM_INSTRUCTION_SET,
        actor=actor,
        target=instruction,
        details={"member": member.membership_number, "auto_claim": auto_claim},
    )
    return instruction


def _claimed_wh(member_ids: list[int], start: datetime, end: datetime) -> dict[tuple, int]:
    rows = (
        Certificate.objects.filter(
            status=Certificate.Status.CLAIMED,
            owner_id__in=member_ids,
            production_start__gte=start,
            production_start__lt=end,
        )
        .values("owner_id", "production_start")
        .annotate(claimed_wh=Sum(F("range_end") - F("range_start")))
        .values_list("owner_id", "production_start", "claimed_wh")
    )
    return {(owner, hour): int(wh or 0) for owner, hour, wh in rows}


def certificates_auto_claim(
    *, start: datetime, end: datetime, actor: Actor = None
) -> AutoClaimSummary:
    """Claim, for every member who has not opted out, their active certificates produced in
    [start, end) against their own validated consumption of the same hour. Idempotent."""
    start, end = energy.floor_hour(start), energy.floor_hour(end)
    opted_out = ClaimInstruction.objects.filter(auto_claim=False).values_list(
        "member_id", flat=True
    )
    active = list(
        Certificate.objects.filter(
            status=Certificate.Status.ACTIVE, production_start__gte=start, production_start__lt=end
        )
        .exclude(owner_id__in=opted_out)
        .order_by("owner_id", "production_start", "emission_factor", "pk")
        .values_list("pk", "owner_id", "production_start", "range_start", "range_end")
    )
    summary = AutoClaimSummary()
    if not active:
        return summary
    by_member: dict[int, dict[datetime, list[tuple[int, int]]]] = defaultdict(dict)
    for pk, owner_id, hour, r0, r1 in active:
        by_member[owner_id].setdefault(hour, []).append((pk, r1 - r0))
    ids = sorted(by_member)
    consumption = energy.members_hourly_import(start, end, ids)
    claimed = _claimed_wh(ids, start, end)
    members = Member.objects.in_bulk(ids)
    for member_id in ids:
        member = members[member_id]
        used = consumption.get(member_id, {})
        beneficiary = auto_claim_beneficiary(member)
        done = 0
        with transaction.atomic():
            for hour, certs in sorted(by_member[member_id].items()):
                left = used.get(hour, 0) - claimed.get((member_id, hour), 0)
                for pk, wh in certs:
                    if left <= 0:
                        break
                    take = min(left, wh)
                    try:
                        with transaction.atomic():
                            part = certificate_claim(
                                certificate_id=pk,
                                member=member,
                                beneficiary=beneficiary,
                                wh=take,
                                actor=actor,
                            )
                    except ApplicationError:
                        summary.skipped += 1  # claimed, split or moved since we read it
                        continue
                    left -= part.wh
                    done += part.wh
                    summary.certificates += 1
        if done:
            summary.members += 1
            summary.wh += done
    if summary.certificates:
        audit_log_write(
            event=AuditEvent.CERTIFICATES_AUTO_CLAIMED,
            actor=actor,
            target_type="incentives.certificates",
            target_id=f"{start.isoformat()}/{end.isoformat()}",
            details={
                "start": start.isoformat(),
                "end": end.isoformat(),
                "members": summary.members,
                "certificates": summary.certificates,
                "wh": summary.wh,
            },
        )
    return summary
