"""General assemblies, proposals and the secret ballot.

Who took part (`Participation`: member, proposal) and what was chosen (`Ballot`: choice,
receipt hash) are kept in two tables with nothing to join them by: the ballot has no member, no
time and a random key, and is listed in receipt-hash order (docs/governance.md)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from apps.accounts.models import Member
from apps.core.state import StatusModel


class ProposalType(models.Model):
    """Quorum and majority rules of one kind of decision (from the statutes; data, not code).

    - quorum: at least `quorum_percent` % of the members eligible when voting opened take part
      (abstentions count as taking part);
    - majority: yes votes against yes + no: more than `majority_numerator/majority_denominator`
      when `majority_strict` (simple majority: more than 1/2), else at least that share (2/3).
    """

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    quorum_percent = models.PositiveSmallIntegerField(default=0)
    majority_numerator = models.PositiveSmallIntegerField(default=1)
    majority_denominator = models.PositiveSmallIntegerField(default=2)
    majority_strict = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name

    @property
    def rule_text(self) -> str:
        share = f"{self.majority_numerator}/{self.majority_denominator}"
        majority = f"more than {share}" if self.majority_strict else f"at least {share}"
        quorum = f"quorum {self.quorum_percent} %" if self.quorum_percent else "no quorum"
        return f"{majority} of yes + no; {quorum}"


class Assembly(StatusModel, models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    TRANSITIONS = {
        Status.DRAFT: frozenset({Status.OPEN}),
        Status.OPEN: frozenset({Status.CLOSED}),
        Status.CLOSED: frozenset(),
    }

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    held_on = models.DateField(default=timezone.localdate)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)

    class Meta:
        ordering = ["-held_on", "-pk"]
        verbose_name_plural = "assemblies"

    def __str__(self) -> str:
        return f"{self.title} ({self.held_on:%Y-%m-%d})"


class Proposal(StatusModel, models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open for voting"
        CLOSED = "closed", "Closed"

    TRANSITIONS = {
        Status.DRAFT: frozenset({Status.OPEN}),
        Status.OPEN: frozenset({Status.CLOSED}),
        Status.CLOSED: frozenset(),
    }

    assembly = models.ForeignKey(Assembly, on_delete=models.PROTECT, related_name="proposals")
    type = models.ForeignKey(ProposalType, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Snapshot at opening: active members, one vote each.
    eligible_count = models.PositiveIntegerField(default=0)
    # The tally, set at close.
    participants = models.PositiveIntegerField(default=0)
    yes = models.PositiveIntegerField(default=0)
    no = models.PositiveIntegerField(default=0)
    abstain = models.PositiveIntegerField(default=0)
    quorum_met = models.BooleanField(null=True, blank=True)
    passed = models.BooleanField(null=True, blank=True)
    ballots_root = models.CharField(max_length=66, blank=True)
    anchor_intent_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["assembly", "pk"]

    def __str__(self) -> str:
        return self.title


class Participation(models.Model):
    """That a member took part in a vote (never what they chose). `cast_by` is the proxy holder
    who cast it, when not the member."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    cast_by = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["proposal", "member"], name="one_member_one_vote")
        ]


class Ballot(models.Model):
    """One secret ballot: the choice and the hash of its receipt. No member, no time; a random
    key, so neither order nor id links it to a participation."""

    class Choice(models.TextChoices):
        YES = "yes", "Yes"
        NO = "no", "No"
        ABSTAIN = "abstain", "Abstain"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="+")
    choice = models.CharField(max_length=10, choices=Choice.choices)
    receipt_hash = models.CharField(max_length=66, unique=True)

    class Meta:
        ordering = ["proposal", "receipt_hash"]


class Proxy(models.Model):
    """A member (grantor) lets another member (holder) vote for them at one assembly."""

    assembly = models.ForeignKey(Assembly, on_delete=models.PROTECT, related_name="proxies")
    grantor = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    holder = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "proxies"
        constraints = [
            models.UniqueConstraint(fields=["assembly", "grantor"], name="one_proxy_per_grantor")
        ]
