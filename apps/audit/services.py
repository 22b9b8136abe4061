"""Writes to the audit log. Every app calls `audit_log_write` inside its write service's
transaction; status changes made with `transition_to` reach it through the `status_changed`
receiver in `apps.audit.receivers`."""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Q, TextField
from django.db.models.functions import Cast

from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor


def audit_log_write(
    *,
    event: AuditEvent,
    actor: Actor = None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one audit row. Call it inside the write service's transaction.

    `event` must be a member of the catalogue (`AuditEvent`); anything else raises
    ApplicationError and writes nothing.
    """
    if event not in AuditEvent.values:
        raise ApplicationError(
            f"{event!r} is not an audit event of the catalogue.", {"event": str(event)}
        )
    if target is not None:
        target_type = target._meta.label_lower
        target_id = target.pk
    user_model = get_user_model()
    actor_obj = actor if isinstance(actor, user_model) and actor.is_authenticated else None
    return AuditLog.objects.create(
        event=AuditEvent(event).value,
        actor=actor_obj,
        actor_label=str(actor_obj) if actor_obj else (str(actor) if actor else "system"),
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
    )


def audit_log_write_many(
    *,
    event: AuditEvent,
    actor: Actor = None,
    rows: list[tuple[models.Model, dict[str, Any]]],
) -> int:
    """Append one audit row per (target, details), in one INSERT per 2,000 rows: the same rows
    `audit_log_write` would write one by one, for services that write many objects at once (the
    monthly statements of every member). Returns the number of rows."""
    if event not in AuditEvent.values:
        raise ApplicationError(
            f"{event!r} is not an audit event of the catalogue.", {"event": str(event)}
        )
    user_model = get_user_model()
    actor_obj = actor if isinstance(actor, user_model) and actor.is_authenticated else None
    label = str(actor_obj) if actor_obj else (str(actor) if actor else "system")
    AuditLog.objects.bulk_create(
        [
            AuditLog(
                event=AuditEvent(event).value,
                actor=actor_obj,
                actor_label=label,
                target_type=target._meta.label_lower,
                target_id=str(target.pk),
                details=details or {},
            )
            for target, details in rows
        ],
        batch_size=2000,
    )
    return len(rows)


def audit_actor_label_replace(*, old: str, new: str) -> int:
    """Replace an actor label on every row (erasure pseudonymises the erased member's email).
    Returns the number of rows changed."""
    return AuditLog.objects.filter(actor_label=old).update(actor_label=new)


def audit_details_scrub(*, texts: list[str], replacement: str) -> int:
    """Replace every occurrence of the given texts (an erased member's name, e-mail,
    beneficiaries) in audit rows' details and actor labels. Returns the number of rows changed.
    The event, actor link, target and time of each row stay: the trail keeps its shape."""
    needles = sorted({t for t in texts if t}, key=len, reverse=True)
    if not needles:
        return 0
    match = Q()
    for needle in needles:
        match |= Q(details_text__icontains=needle) | Q(actor_label__icontains=needle)
    rows = AuditLog.objects.annotate(details_text=Cast("details", TextField())).filter(match)
    changed = 0
    for row in rows.iterator():
        details = json.dumps(row.details)
        label = row.actor_label
        for needle in needles:
            details = _replace_ci(details, json.dumps(needle)[1:-1], replacement)
            label = _replace_ci(label, needle, replacement)
        row.details = json.loads(details)
        row.actor_label = label
        row.save(update_fields=["details", "actor_label"])
        changed += 1
    return changed


def _replace_ci(text: str, needle: str, replacement: str) -> str:
    return re.sub(re.escape(needle), replacement, text, flags=re.IGNORECASE)
