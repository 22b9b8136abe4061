"""The audit side of `apps.core.state.status_changed`: a status change made with an `event`
writes one audit row about the changed instance (core sends the signal and cannot import this
app; this app listens)."""

from __future__ import annotations

from typing import Any

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.types import Actor


def status_changed_audit(
    sender: type,
    *,
    instance: Any,
    from_status: str,
    to_status: str,
    actor: Actor,
    event: AuditEvent | None,
    details: dict[str, Any],
    **_: Any,
) -> None:
    if event is None:
        return
    audit_log_write(event=event, actor=actor, target=instance, details=details)
