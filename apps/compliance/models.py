from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.state import StatusModel


class ErasureRequest(StatusModel, models.Model):
    """A member's request to erase their personal data, handled by staff (GDPR art. 17).

    Completing it pseudonymises the member's personal data; ledgers, statements, certificates and
    chain references are kept (legal retention) and stay verifiable.
    """

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        COMPLETED = "completed", "Completed"
        REFUSED = "refused", "Refused"

    TRANSITIONS = {
        Status.REQUESTED: frozenset({Status.COMPLETED, Status.REFUSED}),
        Status.REFUSED: frozenset({Status.COMPLETED}),
        Status.COMPLETED: frozenset(),
    }

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="erasure_requests"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_at = models.DateTimeField(default=timezone.now)
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"erasure of {self.member_id} [{self.status}]"
