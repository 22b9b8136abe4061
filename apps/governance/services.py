"""Governance write services: assemblies, proposals, proxies, the secret ballot and the tally.

One member, one vote: only active members vote, each once per proposal (a unique participation
per (proposal, member), inserted under the proposal's row lock), never weighted by shares or
tokens. The ballot is written without the member; the voter gets the receipt secret once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.chain.services import document_anchor_submit
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.governance import receipts
from apps.governance.lock_objects import assembly_lock, proposal_lock
from apps.governance.models import Assembly, Ballot, Participation, Proposal, Proxy
from apps.governance.selectors import (
    BALLOTS_ANCHOR_KIND,
    proposal_ballots,
    proxies_held_count,
)


@dataclass(frozen=True)
class Receipt:
    """What the voter keeps: with it anyone can check the ballot was counted as cast."""

    proposal_id: int
    choice: str
    secret: str  # 64 hex digits, shown once, never stored
    receipt_hash: str


def _require_active(member: Member | None, who: str = "You") -> Member:
    if member is None or member.status != Member.Status.ACTIVE:
        raise ApplicationError(f"{who} must be an active member of the cooperative to vote.")
    return member


@transaction.atomic
def assembly_save(*, assembly: Assembly, actor: Actor) -> Assembly:
    """Create or edit an assembly (title, date, description); its status moves only by
    `assembly_open` / `assembly_close`."""
    if assembly.pk and assembly.status == Assembly.Status.CLOSED:
        raise ApplicationError("A closed assembly cannot be changed.")
    created = assembly.pk is None
    assembly.save()
    audit_log_write(
        event=AuditEvent.ASSEMBLY_SAVED,
        actor=actor,
        target=assembly,
        details={"title": assembly.title, "created": created},
    )
    return assembly


@transaction.atomic
def proposal_save(*, proposal: Proposal, actor: Actor) -> Proposal:
    """Create or edit a draft proposal."""
    if proposal.pk and proposal.status != Proposal.Status.DRAFT:
        raise ApplicationError("Only a draft proposal can be changed.")
    if proposal.assembly.status == Assembly.Status.CLOSED:
        raise ApplicationError("The assembly is closed.")
    created = proposal.pk is None
    proposal.save()
    audit_log_write(
        event=AuditEvent.PROPOSAL_SAVED,
        actor=actor,
        target=proposal,
        details={"title": proposal.title, "type": proposal.type.code, "created": created},
    )
    return proposal


@transaction.atomic
def assembly_open(*, assembly_id: int, actor: Actor) -> Assembly:
    assembly = assembly_lock(assembly_id)
    assembly.transition_to(Assembly.Status.OPEN, actor=actor, event=AuditEvent.ASSEMBLY_SAVED)
    return assembly


@transaction.atomic
def proposal_open(*, proposal_id: int, actor: Actor) -> Proposal:
    """Open voting: the eligible members (active now) are counted for the quorum; the assembly
    opens with its first proposal."""
    proposal = proposal_lock(proposal_id)
    assembly = assembly_lock(proposal.assembly_id)
    if assembly.status == Assembly.Status.DRAFT:
        assembly.transition_to(Assembly.Status.OPEN, actor=actor, event=AuditEvent.ASSEMBLY_SAVED)
    elif assembly.status == Assembly.Status.CLOSED:
        raise ApplicationError("The assembly is closed.")
    proposal.opened_at = timezone.now()
    proposal.eligible_count = Member.objects.filter(status=Member.Status.ACTIVE).count()
    proposal.transition_to(
        Proposal.Status.OPEN,
        actor=actor,
        event=AuditEvent.PROPOSAL_OPENED,
        details={"eligible": proposal.eligible_count, "rule": proposal.type.rule_text},
        update_fields=["opened_at", "eligible_count"],
    )
    return proposal


@transaction.atomic
def vote_cast(
    *, voter: Member | None, proposal_id: int, choice: str, for_member: Member | None = None
) -> Receipt:
    """Cast one ballot, for the voter or (with a proxy for this assembly) for `for_member`.
    Returns the receipt; a second vote for the same member is refused, also when two requests
    race (the unique participation decides, under the proposal's lock)."""
    voter = _require_active(voter)
    if choice not in Ballot.Choice.values:
        raise ApplicationError("Choose yes, no or abstain.", {"choice": choice})
    proposal = proposal_lock(proposal_id)
    if proposal.status != Proposal.Status.OPEN:
        raise ApplicationError("This proposal is not open for voting.")
    member = voter
    if for_member is not None and for_member.pk != voter.pk:
        _require_active(for_member, "The member you hold a proxy for")
        if not Proxy.objects.filter(
            assembly_id=proposal.assembly_id, grantor=for_member, holder=voter
        ).exists():
            raise ApplicationError("You hold no proxy of this member for this assembly.")
        member = for_member
    try:
        with transaction.atomic():
            Participation.objects.create(
                proposal=proposal, member=member, cast_by=voter if member != voter else None
            )
    except IntegrityError as exc:
        raise ApplicationError("A vote was already cast for this member on this proposal.") from exc
    secret = secrets.token_bytes(receipts.SECRET_BYTES)
    receipt = receipts.receipt_hash(secret=secret, choice=choice, proposal_id=proposal.pk)
    Ballot.objects.create(proposal=proposal, choice=choice, receipt_hash="0x" + receipt.hex())
    # The audit log says who took part (as the participation does), never the choice.
    audit_log_write(
        event=AuditEvent.BALLOT_CAST,
        actor=voter.user,
        target=proposal,
        details={
            "member": member.membership_number,
            **({"proxy_holder": voter.membership_number} if member != voter else {}),
        },
    )
    return Receipt(
        proposal_id=proposal.pk,
        choice=choice,
        secret=secret.hex(),
        receipt_hash="0x" + receipt.hex(),
    )


def _passes(proposal: Proposal) -> tuple[bool, bool]:
    rules = proposal.type
    quorum_met = proposal.participants * 100 >= rules.quorum_percent * proposal.eligible_count
    decided = proposal.yes + proposal.no
    if decided == 0:
        return quorum_met, False
    lhs = proposal.yes * rules.majority_denominator
    rhs = rules.majority_numerator * decided
    majority = lhs > rhs if rules.majority_strict else lhs >= rhs
    return quorum_met, quorum_met and majority


@transaction.atomic
def proposal_close(*, proposal_id: int, actor: Actor) -> Proposal:
    """Close voting: tally the ballots, apply the type's quorum and majority, build the Merkle
    tree over the ballots (receipt-hash order) and queue its root for anchoring on chain
    (MeterOracle document anchor, kind "governance_ballots")."""
    proposal = proposal_lock(proposal_id)
    ballots = proposal_ballots(proposal_id=proposal.pk)
    counts = dict.fromkeys(Ballot.Choice.values, 0)
    for _receipt, choice in ballots:
        counts[choice] += 1
    participants = Participation.objects.filter(proposal=proposal).count()
    if participants != len(ballots):  # pragma: no cover - written together, in one transaction
        raise ApplicationError("Participations and ballots disagree; nothing was closed.")
    proposal.participants = participants
    proposal.yes, proposal.no, proposal.abstain = counts["yes"], counts["no"], counts["abstain"]
    proposal.quorum_met, proposal.passed = _passes(proposal)
    proposal.closed_at = timezone.now()
    if ballots:
        root = "0x" + receipts.ballots_tree(proposal.pk, ballots).root.hex()
        proposal.ballots_root = root
        proposal.anchor_intent_id = document_anchor_submit(
            kind=BALLOTS_ANCHOR_KIND, digest=root, actor=actor
        ).pk
    proposal.transition_to(
        Proposal.Status.CLOSED,
        actor=actor,
        event=AuditEvent.PROPOSAL_CLOSED,
        details={
            "participants": participants,
            "eligible": proposal.eligible_count,
            "yes": proposal.yes,
            "no": proposal.no,
            "abstain": proposal.abstain,
            "quorum_met": proposal.quorum_met,
            "passed": proposal.passed,
            "ballots_root": proposal.ballots_root,
        },
        update_fields=None,
    )
    return proposal


@transaction.atomic
def assembly_close(*, assembly_id: int, actor: Actor) -> Assembly:
    """Close the assembly and every proposal still open in it."""
    assembly = assembly_lock(assembly_id)
    for proposal_id in Proposal.objects.filter(
        assembly_id=assembly_id, status=Proposal.Status.OPEN
    ).values_list("pk", flat=True):
        proposal_close(proposal_id=proposal_id, actor=actor)
    assembly.transition_to(Assembly.Status.CLOSED, actor=actor, event=AuditEvent.ASSEMBLY_SAVED)
    return assembly


@transaction.atomic
def proxy_grant(*, grantor: Member | None, holder: Member, assembly_id: int) -> Proxy:
    """Let `holder` vote for `grantor` at the assembly; a holder may hold at most
    GOVERNANCE_MAX_PROXIES_PER_MEMBER proxies per assembly (the statutes)."""
    grantor = _require_active(grantor)
    _require_active(holder, "The proxy holder")
    if grantor.pk == holder.pk:
        raise ApplicationError("You cannot hold your own proxy.")
    assembly = assembly_lock(assembly_id)
    if assembly.status == Assembly.Status.CLOSED:
        raise ApplicationError("The assembly is closed.")
    limit = settings.GOVERNANCE_MAX_PROXIES_PER_MEMBER
    if proxies_held_count(holder_id=holder.pk, assembly_id=assembly_id) >= limit:
        raise ApplicationError(
            f"This member already holds {limit} proxies for this assembly (the statutes' limit)."
        )
    if Proxy.objects.filter(assembly_id=assembly_id, grantor=holder).exists():
        raise ApplicationError("This member has given their own proxy away for this assembly.")
    if Proxy.objects.filter(assembly_id=assembly_id, holder=grantor).exists():
        raise ApplicationError("You hold proxies for this assembly: you cannot pass yours on.")
    if Participation.objects.filter(proposal__assembly_id=assembly_id, member=grantor).exists():
        raise ApplicationError("You have voted at this assembly already.")
    try:
        with transaction.atomic():
            proxy = Proxy.objects.create(assembly=assembly, grantor=grantor, holder=holder)
    except IntegrityError as exc:
        raise ApplicationError("You have given your proxy for this assembly already.") from exc
    audit_log_write(
        event=AuditEvent.PROXY_GRANTED,
        actor=grantor.user,
        target=proxy,
        details={"grantor": grantor.membership_number, "holder": holder.membership_number},
    )
    return proxy


@transaction.atomic
def proxy_revoke(*, grantor: Member, assembly_id: int) -> int:
    assembly_lock(assembly_id)
    deleted, _ = Proxy.objects.filter(assembly_id=assembly_id, grantor=grantor).delete()
    if deleted:
        audit_log_write(
            event=AuditEvent.PROXY_REVOKED,
            actor=grantor.user,
            target_type="governance.proxy",
            details={"grantor": grantor.membership_number, "assembly": assembly_id},
        )
    return deleted
