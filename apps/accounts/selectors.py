"""Reads for accounts. Members only ever see their own data: every member-facing view starts
from `member_for_user(request.user)` and filters by that member, so another member's object is
simply not found (404), never "forbidden" (which would confirm that it exists)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import Http404

from apps.accounts.models import Member, User
from apps.core.types import Actor

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def member_for_user(user: User | AnonymousUser | None) -> Member:
    """The Member of a logged-in user, or Http404 (staff/auditor accounts have no Member)."""
    if user is None or user.pk is None or not getattr(user, "is_authenticated", False):
        raise Http404("No member profile.")
    try:
        member = Member.objects.select_related("user").get(user_id=user.pk)
    except Member.DoesNotExist as exc:
        raise Http404("No member profile.") from exc
    if isinstance(user, User):
        # The portal's layout reads `request.user.member` again: it finds this row.
        user._state.fields_cache["member"] = member
    return member


def user_is_auditor(user: User | AnonymousUser | None) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.groups.filter(name="auditor").exists()
    )


def actor_user(actor: Actor) -> User | None:
    """The signed-in user behind a write, or None for the system, a label such as "beat" or the
    anonymous user (what a `…_by` foreign key records)."""
    return actor if isinstance(actor, User) and actor.is_authenticated else None


def member_for_user_or_none(user: User | AnonymousUser | None) -> Member | None:
    try:
        return member_for_user(user)
    except Http404:
        return None


def member_id_by_number(*, membership_number: str) -> int | None:
    """The id of the member with this membership number, or None (one query)."""
    return (
        Member.objects.filter(membership_number=membership_number)
        .values_list("pk", flat=True)
        .first()
    )


def member_numbers_by_id(*, member_ids: list[int]) -> dict[int, str]:
    """{member id: membership number} of these members (one query)."""
    return dict(Member.objects.filter(pk__in=member_ids).values_list("pk", "membership_number"))


def member_email_taken(*, email: str) -> bool:
    return User.objects.filter(email__iexact=email.strip()).exists()


def staff_queue_counts() -> dict[str, int]:
    """The staff home's membership work: applicants waiting to be admitted."""
    return {"applicants": Member.objects.filter(status=Member.Status.APPLICANT).count()}
