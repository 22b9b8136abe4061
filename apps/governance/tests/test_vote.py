"""Acceptance 7: one member one vote with a secret, verifiable ballot.

20 members vote, the tally matches, each receipt verifies against the root anchored on chain, a
member cannot vote twice (also when two requests race), non-members, applicants, members who
left and staff cannot vote, and nothing staff can read links a member to a choice."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.urls import reverse
from django.utils.html import escape

from apps.accounts.models import Member
from apps.accounts.tests.factories import MemberFactory, StaffUserFactory
from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.chain import client as chain_client
from apps.chain.intents import document_kind
from apps.chain.outbox import chain_outbox_sweep
from apps.core.exceptions import ApplicationError
from apps.governance import services
from apps.governance.models import (
    Assembly,
    Ballot,
    Participation,
    Proposal,
    ProposalType,
    Proxy,
)
from apps.governance.selectors import BALLOTS_ANCHOR_KIND, receipt_check
from tests.fixtures.core import login_with_mfa


@pytest.fixture
def proposal_types():
    """The statutes' types of migration 0002 (a transactional test's flush removes them)."""
    ProposalType.objects.get_or_create(
        code="ordinary",
        defaults={"name": "Ordinary resolution", "quorum_percent": 0},
    )
    ProposalType.objects.get_or_create(
        code="statutes",
        defaults={
            "name": "Change of the statutes",
            "quorum_percent": 50,
            "majority_numerator": 2,
            "majority_denominator": 3,
            "majority_strict": False,
        },
    )


def _proposal(type_code: str = "statutes") -> Proposal:
    assembly = Assembly.objects.create(title="General assembly 2026")
    proposal = Proposal.objects.create(
        assembly=assembly,
        type=ProposalType.objects.get(code=type_code),
        title="Amend § 7 of the statutes",
    )
    return services.proposal_open(proposal_id=proposal.pk, actor="test")


def test_twenty_members_vote_the_tally_matches_and_every_receipt_verifies_on_chain(
    chain, proposal_types, client
):
    voters = MemberFactory.create_batch(20)
    applicant = MemberFactory(status=Member.Status.APPLICANT)
    left = MemberFactory(status=Member.Status.LEFT)
    staff = StaffUserFactory()
    proposal = _proposal()
    assert proposal.eligible_count == 20  # active members only

    choices = ["yes"] * 13 + ["no"] * 4 + ["abstain"] * 2
    receipts = [
        services.vote_cast(voter=member, proposal_id=proposal.pk, choice=choice)
        for member, choice in zip(voters[:19], choices, strict=True)
    ]
    # The 20th votes through the portal page and is shown the receipt once.
    client.force_login(voters[19].user)
    page = client.post(reverse("governance:proposal", args=[proposal.pk]), {"choice": "yes"})
    assert page.status_code == 200
    secret = page.context["receipt"].secret
    assert secret in page.content.decode()
    receipts.append(page.context["receipt"])

    # Twice is refused, in the service and on the page.
    with pytest.raises(ApplicationError, match="already"):
        services.vote_cast(voter=voters[0], proposal_id=proposal.pk, choice="no")
    again = client.post(
        reverse("governance:proposal", args=[proposal.pk]), {"choice": "no"}, follow=True
    )
    assert "already" in again.content.decode()
    # Applicants, members who left, accounts without membership and staff cannot vote.
    for outsider in (applicant, left, None):
        with pytest.raises(ApplicationError, match="active member"):
            services.vote_cast(voter=outsider, proposal_id=proposal.pk, choice="yes")
    login_with_mfa(client, staff)
    refused = client.post(reverse("governance:proposal", args=[proposal.pk]), {"choice": "yes"})
    assert refused.status_code == 403

    closed = services.proposal_close(proposal_id=proposal.pk, actor="test")
    assert (closed.yes, closed.no, closed.abstain, closed.participants) == (14, 4, 2, 20)
    assert Counter(r.choice for r in receipts) == {"yes": 14, "no": 4, "abstain": 2}
    assert closed.quorum_met and closed.passed  # 14 of 18 decided ≥ 2/3, 20 of 20 took part

    chain_outbox_sweep(wait_seconds=5)  # the outbox worker anchors the ballots' root
    oracle = chain_client.contract("MeterOracle")
    anchored_at = oracle.functions.documentAnchoredAt(
        document_kind(BALLOTS_ANCHOR_KIND), bytes.fromhex(closed.ballots_root[2:])
    ).call()
    assert anchored_at > 0

    for receipt in receipts:
        check = receipt_check(proposal=closed, choice=receipt.choice, secret_hex=receipt.secret)
        assert check.verified, check
        assert check.anchor_source == "chain"
    # A receipt with another choice than the one cast is not in the tree.
    forged = receipt_check(
        proposal=closed,
        choice="no" if receipts[0].choice == "yes" else "yes",
        secret_hex=receipts[0].secret,
    )
    assert not forged.verified and not forged.included

    # The member checks on the verification page (JSON answer) and sees the published result.
    client.force_login(voters[19].user)
    answer = client.get(
        reverse("governance:verify", args=[proposal.pk]),
        {"choice": "yes", "secret": secret, "format": "json"},
    ).json()
    assert answer["verified"] is True
    result = client.get(reverse("governance:proposal", args=[proposal.pk])).content.decode()
    assert "Passed" in result and closed.ballots_root in result


def test_two_concurrent_votes_of_one_member_count_once(transactional_db, proposal_types):
    member = MemberFactory()
    proposal = _proposal("ordinary")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def vote(choice: str) -> None:
        try:
            barrier.wait(timeout=10)
            services.vote_cast(voter=member, proposal_id=proposal.pk, choice=choice)
            outcomes.append("cast")
        except ApplicationError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=vote, args=(c,)) for c in ("yes", "no")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["cast", "refused"]
    assert Participation.objects.filter(proposal=proposal).count() == 1
    assert Ballot.objects.filter(proposal=proposal).count() == 1


def test_nothing_staff_can_read_links_a_member_to_a_choice(db, proposal_types, client):
    members = MemberFactory.create_batch(3)
    proposal = _proposal("ordinary")
    for member, choice in zip(members, ("yes", "no", "abstain"), strict=True):
        services.vote_cast(voter=member, proposal_id=proposal.pk, choice=choice)

    # The tables: ballots have no member and no time, participations no choice and no time;
    # the ballot's key is random, so neither ids nor order pair them up.
    def columns(model) -> set[str]:
        with connection.cursor() as cursor:
            desc = connection.introspection.get_table_description(cursor, model._meta.db_table)
        return {c.name for c in desc}

    assert columns(Ballot) == {"id", "proposal_id", "choice", "receipt_hash"}
    assert columns(Participation) == {"id", "proposal_id", "member_id", "cast_by_id"}
    assert Ballot._meta.pk.get_internal_type() == "UUIDField"
    assert Ballot._meta.ordering == ["proposal", "receipt_hash"]

    # The admin, as staff: the ballot list names no member, the participation list no choice.
    login_with_mfa(client, StaffUserFactory())
    ballots = client.get(reverse("admin:governance_ballot_changelist")).content.decode()
    participations = client.get(
        reverse("admin:governance_participation_changelist")
    ).content.decode()
    for member in members:
        assert member.membership_number not in ballots
        assert escape(member.legal_name) not in ballots
        assert member.membership_number in participations
    for ballot in Ballot.objects.all():
        assert ballot.receipt_hash in ballots
        assert ballot.receipt_hash not in participations
    assert 'class="field-choice"' not in participations
    # The audit log says who took part, never how.
    cast_rows = AuditLog.objects.filter(event=AuditEvent.BALLOT_CAST)
    assert cast_rows.count() == 3
    for row in cast_rows:
        assert not {"yes", "no", "abstain"} & set(map(str, row.details.values()))
        assert "choice" not in row.details


def test_proxies_vote_for_their_grantor_within_the_statutes_limit(db, proposal_types, settings):
    settings.GOVERNANCE_MAX_PROXIES_PER_MEMBER = 2
    holder, a, b, c = MemberFactory.create_batch(4)
    proposal = _proposal("ordinary")
    services.proxy_grant(grantor=a, holder=holder, assembly_id=proposal.assembly_id)
    services.proxy_grant(grantor=b, holder=holder, assembly_id=proposal.assembly_id)
    with pytest.raises(ApplicationError, match="already holds 2 proxies"):
        services.proxy_grant(grantor=c, holder=holder, assembly_id=proposal.assembly_id)

    services.vote_cast(voter=holder, proposal_id=proposal.pk, choice="yes", for_member=a)
    with pytest.raises(ApplicationError, match="no proxy"):
        services.vote_cast(voter=holder, proposal_id=proposal.pk, choice="yes", for_member=c)
    with pytest.raises(ApplicationError, match="already"):
        services.vote_cast(voter=a, proposal_id=proposal.pk, choice="no")  # a's vote is cast
    assert Participation.objects.get(member=a).cast_by == holder
    assert Proxy.objects.filter(holder=holder).count() == 2


@pytest.mark.parametrize(
    ("type_code", "eligible", "yes", "no", "abstain", "quorum_met", "passed"),
    [
        ("ordinary", 10, 2, 1, 0, True, True),  # simple majority, no quorum
        ("ordinary", 10, 2, 2, 3, True, False),  # a tie is not a majority
        ("statutes", 10, 4, 2, 0, True, True),  # exactly 2/3 with 60 % taking part
        ("statutes", 10, 3, 1, 0, False, False),  # 40 % took part: no quorum
        ("statutes", 10, 5, 3, 0, True, False),  # 5/8 is below 2/3
    ],
)
def test_quorum_and_majority_follow_the_proposal_type(
    db, proposal_types, type_code, eligible, yes, no, abstain, quorum_met, passed
):
    proposal = Proposal(
        type=ProposalType.objects.get(code=type_code),
        eligible_count=eligible,
        participants=yes + no + abstain,
        yes=yes,
        no=no,
        abstain=abstain,
    )
    assert services._passes(proposal) == (quorum_met, passed)


def test_portal_pages_list_the_vote_and_give_a_proxy(db, proposal_types, client):
    holder, grantor = MemberFactory.create_batch(2)
    proposal = _proposal("ordinary")
    client.force_login(grantor.user)
    index = client.get(reverse("governance:index")).content.decode()
    assert proposal.title in index
    answer = client.post(
        reverse("governance:proxies"),
        {"assembly": proposal.assembly_id, "holder": holder.membership_number},
        follow=True,
    )
    assert f"Your proxy: {escape(holder.legal_name)}" in answer.content.decode()
    client.force_login(holder.user)
    page = client.get(reverse("governance:proposal", args=[proposal.pk])).content.decode()
    assert f"Vote as proxy for {escape(grantor.legal_name)}" in page
