"""Reads of governance: assemblies and proposals for the portal, results, a member's own
participation and proxies, and receipt verification against the anchored root."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from apps.accounts.models import Member
from apps.chain.selectors import document_anchor_status
from apps.governance import receipts
from apps.governance.models import Assembly, Ballot, Participation, Proposal, Proxy

BALLOTS_ANCHOR_KIND = "governance_ballots"


def assemblies_visible() -> QuerySet[Assembly]:
    """Assemblies members see: every one past its draft."""
    return Assembly.objects.exclude(status=Assembly.Status.DRAFT).prefetch_related(
        "proposals__type"
    )


def proposal_visible(*, proposal_id: int) -> Proposal:
    """A proposal members may see (open or closed), or Proposal.DoesNotExist."""
    return (
        Proposal.objects.select_related("type", "assembly")
        .exclude(status=Proposal.Status.DRAFT)
        .get(pk=proposal_id)
    )


def member_by_number(*, membership_number: str) -> Member | None:
    return Member.objects.filter(membership_number=membership_number.strip()).first()


def member_participations(*, member: Member) -> QuerySet[Participation]:
    """The votes the member took part in (never the choice: it is not linked to them)."""
    return (
        Participation.objects.filter(member=member)
        .select_related("proposal__assembly", "cast_by")
        .order_by("proposal_id")
    )


def member_voted_proposal_ids(*, member: Member) -> set[int]:
    return set(Participation.objects.filter(member=member).values_list("proposal_id", flat=True))


def member_proxies_held(*, member: Member, assembly_id: int | None = None) -> list[Proxy]:
    rows = Proxy.objects.filter(holder=member).select_related("grantor", "assembly")
    if assembly_id is not None:
        rows = rows.filter(assembly_id=assembly_id)
    return list(rows.order_by("assembly_id", "grantor__membership_number"))


def member_proxy_given(*, member: Member, assembly_id: int) -> Proxy | None:
    return (
        Proxy.objects.filter(grantor=member, assembly_id=assembly_id)
        .select_related("holder")
        .first()
    )


def proxies_held_count(*, holder_id: int, assembly_id: int) -> int:
    return Proxy.objects.filter(holder_id=holder_id, assembly_id=assembly_id).count()


def proposal_ballots(*, proposal_id: int) -> list[tuple[bytes, str]]:
    """(receipt hash, choice) of every ballot, in receipt-hash order (publishable: no member)."""
    return sorted(
        (bytes.fromhex(h.removeprefix("0x")), c)
        for h, c in Ballot.objects.filter(proposal_id=proposal_id).values_list(
            "receipt_hash", "choice"
        )
    )


@dataclass
class ReceiptCheck:
    proposal_id: int
    choice: str
    receipt_hash: str = ""
    included: bool = False
    leaf_index: int | None = None
    proof: list[str] = field(default_factory=list)
    root: str = ""
    root_matches_ballots: bool = False
    anchored: bool = False
    anchor_source: str = ""
    verified: bool = False
    problem: str = ""


def receipt_check(*, proposal: Proposal, choice: str, secret_hex: str) -> ReceiptCheck:
    """Is the ballot behind this receipt in the closed proposal's tree, and is that tree's root
    the one anchored on chain? `verified` only when both hold."""
    check = ReceiptCheck(proposal_id=proposal.pk, choice=choice)
    try:
        secret = bytes.fromhex(secret_hex.strip().removeprefix("0x"))
        receipt = receipts.receipt_hash(secret=secret, choice=choice, proposal_id=proposal.pk)
    except ValueError:
        check.problem = (
            "This is not a receipt: the secret is 64 hex digits and the choice yes, no or abstain."
        )
        return check
    check.receipt_hash = "0x" + receipt.hex()
    if proposal.status != Proposal.Status.CLOSED or not proposal.ballots_root:
        check.problem = "The vote is not closed yet: receipts verify once the tally is anchored."
        return check
    ballots = proposal_ballots(proposal_id=proposal.pk)
    index = receipts.leaf_index(ballots, receipt)
    tree = receipts.ballots_tree(proposal.pk, ballots)
    check.root = proposal.ballots_root
    check.root_matches_ballots = "0x" + tree.root.hex() == proposal.ballots_root
    if index is None:
        check.problem = "No ballot with this receipt was counted."
        return check
    check.included = True
    check.leaf_index = index
    proof = tree.proof(index)
    check.proof = ["0x" + p.hex() for p in proof]
    leaf = receipts.ballot_leaf(proposal_id=proposal.pk, receipt=receipt, choice=choice)
    from apps.chain.merkle import verify

    in_tree = verify(leaf, proof, bytes.fromhex(proposal.ballots_root.removeprefix("0x")))
    status = document_anchor_status(kind=BALLOTS_ANCHOR_KIND, digest=proposal.ballots_root)
    check.anchored = status.anchored
    check.anchor_source = status.source
    check.verified = in_tree and check.root_matches_ballots and status.anchored
    if not status.anchored:
        check.problem = "Counted, but the root is not anchored on chain yet."
    return check
