"""Row locks of the notifications app (see apps/core/locks.py)."""

from __future__ import annotations

from apps.core.locks import lock_row
from apps.notifications.models import Delivery


def delivery_lock(delivery_id: int) -> Delivery:
    """One delivery, so two workers running the same task send it once."""
    return lock_row(
        Delivery.objects.select_related("notification__member__user"), delivery_id, of=("self",)
    )
