"""Live notifications over Channels (group names and a safe sender).

Groups: `grid-dr-member-<member id>` (a member's DR events), `grid-staff` (staff dashboard).
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

STAFF_GROUP = "grid-staff"


def member_group(member_id: int) -> str:
    return f"grid-dr-member-{member_id}"


def broadcast(group: str, message: dict[str, Any]) -> None:
    """Send `message` (with a "type" handler name) to a group; never fail the caller."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # noqa: BLE001 - a notification must not break the write that caused it
        logger.warning("could not broadcast to %s", group, exc_info=True)
