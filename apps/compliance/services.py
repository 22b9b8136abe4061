from __future__ import annotations

from typing import Any

from django.db import models

from apps.compliance.models import AuditLog


def audit_log_write(
    *,
    event: str,
    actor: Any = None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one audit row. Call it inside the write service's transaction."""
    if target is not None:
        target_type = target._meta.label_lower
        target_id = target.pk
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    return AuditLog.objects.create(
        event=event,
        actor=actor_obj,
        actor_label=str(actor_obj) if actor_obj else (str(actor) if actor else "system"),
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
    )
