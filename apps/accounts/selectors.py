"""Reads for accounts. Members only ever see their own data: every member-facing view starts
from `member_for_user(request.user)` and filters by that member, so another member's object is
simply not found (404), never "forbidden" (which would confirm that it exists)."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from apps.accounts.models import Member


def member_for_user(user: Any) -> Member:
    """The Member of a logged-in user, or Http404 (staff/auditor accounts have no Member)."""
    if user is None or not getattr(user, "is_authenticated", False):
        raise Http404("No member profile.")
    try:
        return Member.objects.select_related("user").get(user_id=user.pk)
    except Member.DoesNotExist as exc:
        raise Http404("No member profile.") from exc


def user_is_auditor(user: Any) -> bool:
    return bool(
        getattr(user, "is_authenticated", False) and user.groups.filter(name="auditor").exists()
    )


def member_for_user_or_none(user: Any) -> Member | None:
    try:
        return member_for_user(user)
    except Http404:
        return None
