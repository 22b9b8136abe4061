"""Writes to the audit log. Every app calls `audit_log_write` inside its write service's
transaction; status changes made with `transition_to` reach it through the `status_changed`
receiver in `apps.audit.receivers`.

Hash chain (apps/audit/hashchain.py): a row gets the digest of its actor label and details when
it is written, and its chain position, previous hash and row hash when it is sealed —
`audit_chain_seal`, run once after the writing transaction commits and by the periodic head
anchoring. Sealing after the commit keeps the chain head's lock out of every writer's
transaction (no writer waits for another's commit, no lock-order deadlock) while the head lock
still gives one serial order: concurrent sealers cannot fork the chain."""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast

from apps.audit.events import AuditEvent
from apps.audit.hashchain import content_digest, row_digest
from apps.audit.lock_objects import audit_chain_head_lock, audit_chain_head_lock_wait
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
    actor_label = str(actor_obj) if actor_obj else (str(actor) if actor else "system")
    details = details or {}
    # The digest of what the database will give back (JSON round trip of the stored value).
    stored = json.loads(json.dumps(details, cls=DjangoJSONEncoder))
    row = AuditLog.objects.create(
        event=AuditEvent(event).value,
        actor=actor_obj,
        actor_label=actor_label,
        target_type=target_type,
        target_id=str(target_id),
        details=details,
        content_sha256=content_digest(actor_label=actor_label, details=stored),
    )
    _seal_after_commit()
    return row


def _seal_on_commit() -> None:
    try:
        audit_chain_seal()
    except Exception:  # noqa: BLE001 - the write is committed; the next seal chains the row
        import logging

        logging.getLogger(__name__).warning("audit chain seal failed; the next one retries")


def _seal_after_commit() -> None:
    """Seal once after the current transaction commits (once per transaction, however many
    rows it writes; `run_on_commit` holds the hooks registered so far)."""
    connection = transaction.get_connection()
    if any(hook[1] is _seal_on_commit for hook in connection.run_on_commit):
        return
    transaction.on_commit(_seal_on_commit)


def audit_chain_seal(*, limit: int = 10_000, wait: bool = False) -> int:
    """Chain the committed rows that are not chained yet, in id order: position, previous hash,
    row hash; the head moves to the last one. Returns how many rows were sealed. Without `wait`
    it returns 0 at once when another transaction is sealing."""
    sealed = 0
    with transaction.atomic():
        head = audit_chain_head_lock_wait() if wait else audit_chain_head_lock()
        if head is None:
            return 0
        rows = list(AuditLog.objects.filter(chain_seq__isnull=True).order_by("id")[:limit])
        for row in rows:
            if not row.content_sha256:  # written before the chain existed
                row.content_sha256 = content_digest(
                    actor_label=row.actor_label, details=row.details
                )
            row.chain_seq = head.chain_seq + 1
            row.prev_hash = head.row_hash
            row.row_hash = row_digest(
                chain_seq=row.chain_seq,
                row_id=row.pk,
                created_at=row.created_at,
                event=row.event,
                target_type=row.target_type,
                target_id=row.target_id,
                content_sha256=row.content_sha256,
                prev_hash=row.prev_hash,
            )
            head.chain_seq, head.row_hash = row.chain_seq, row.row_hash
            sealed += 1
        if rows:
            _store_chain_fields(rows)
            head.save(update_fields=["chain_seq", "row_hash", "updated_at"])
    return sealed


def _store_chain_fields(rows: list[AuditLog], batch: int = 1000) -> None:
    """One UPDATE … FROM (VALUES …) per `batch` rows (Django's bulk_update builds a CASE per
    column and row, quadratic in the batch)."""
    table = connection.ops.quote_name(AuditLog._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            values = ", ".join(["(%s::bigint, %s, %s::bigint, %s, %s)"] * len(chunk))
            params: list[Any] = []
            for r in chunk:
                params += [r.pk, r.content_sha256, r.chain_seq, r.prev_hash, r.row_hash]
            cursor.execute(
                f"UPDATE {table} AS a SET content_sha256 = v.c, chain_seq = v.s, "  # noqa: S608
                f"prev_hash = v.p, row_hash = v.h FROM (VALUES {values}) AS v(id, c, s, p, h) "
                "WHERE a.id = v.id",
                params,
            )


def _record_redaction(row_ids: list[int], *, reason: str) -> None:
    """Commit, in the chain, to the new content digest of each redacted row."""
    if not row_ids:
        return
    digests = {
        str(pk): content_digest(actor_label=label, details=details)
        for pk, label, details in AuditLog.objects.filter(pk__in=row_ids)
        .order_by("pk")
        .values_list("pk", "actor_label", "details")
    }
    audit_log_write(
        event=AuditEvent.AUDIT_LOG_REDACTED,
        target_type="audit.auditlog",
        details={"reason": reason, "rows": digests},
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
    Returns the number of rows changed; the change is recorded in the hash chain."""
    ids = list(AuditLog.objects.filter(actor_label=old).values_list("pk", flat=True))
    changed = AuditLog.objects.filter(pk__in=ids).update(actor_label=new)
    _record_redaction(ids, reason="actor label pseudonymised")
    return changed


def audit_details_scrub(*, texts: list[str], replacement: str) -> int:
    """Replace every occurrence of the given texts (an erased member's name, e-mail,
    beneficiaries) in audit rows' details and actor labels. Returns the number of rows changed.
    The event, actor link, target and time of each row stay: the trail keeps its shape, and an
    `audit_log.redacted` row commits to each changed row's new content digest, so the hash chain
    still verifies (and an edit nobody recorded does not)."""
    needles = sorted({t for t in texts if t}, key=len, reverse=True)
    if not needles:
        return 0
    match = Q()
    for needle in needles:
        match |= Q(details_text__icontains=needle) | Q(actor_label__icontains=needle)
    rows = AuditLog.objects.annotate(details_text=Cast("details", TextField())).filter(match)
    changed = 0
    ids = []
    for row in rows.iterator():
        details = json.dumps(row.details)
        label = row.actor_label
        for needle in needles:
            details = _replace_ci(details, json.dumps(needle)[1:-1], replacement)
            label = _replace_ci(label, needle, replacement)
        row.details = json.loads(details)
        row.actor_label = label
        row.save(update_fields=["details", "actor_label"])
        ids.append(row.pk)
        changed += 1
    _record_redaction(ids, reason="personal data erased")
    return changed


def _replace_ci(text: str, needle: str, replacement: str) -> str:
    return re.sub(re.escape(needle), replacement, text, flags=re.IGNORECASE)
