"""Reads of the audit log."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max, Q, QuerySet

from apps.audit.models import AuditLog


def audit_log_max_id(*, start: datetime, end: datetime) -> int:
    """The highest row id written in [start, end) (0 when none)."""
    qs = AuditLog.objects.filter(created_at__gte=start, created_at__lt=end)
    return qs.aggregate(m=Max("id"))["m"] or 0


def audit_log_for_period(*, start: datetime, end: datetime, max_id: int) -> list[AuditLog]:
    """Rows written in [start, end) with id <= max_id, oldest first."""
    return list(
        AuditLog.objects.filter(created_at__gte=start, created_at__lt=end, id__lte=max_id).order_by(
            "created_at", "id"
        )
    )


def audit_log_about_member(
    *, user_id: int, member_id: int, membership_number: str
) -> QuerySet[AuditLog]:
    """Rows the member did or that are about them (as actor, target or named in the details),
    oldest first."""
    return AuditLog.objects.filter(
        Q(actor_id=user_id)
        | Q(target_type="accounts.member", target_id=str(member_id))
        | Q(details__member=membership_number)
        | Q(details__owner=membership_number)
    ).order_by("created_at", "id")
