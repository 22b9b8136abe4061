"""Reads of the audit log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max, Q, QuerySet

from apps.audit.events import AuditEvent
from apps.audit.hashchain import GENESIS, content_digest, row_digest
from apps.audit.models import AuditChainHead, AuditLog


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


@dataclass
class AuditChainCheck:
    """The result of walking the audit log's hash chain (`audit_chain_verify`)."""

    rows_checked: int = 0
    last_seq: int = 0
    last_row_id: int | None = None
    last_hash: str = GENESIS
    unsealed: int = 0
    redacted_rows: int = 0
    problems: list[str] = field(default_factory=list)
    first_broken_row: int | None = None  # id of the first row named in a problem
    # anchored head digest -> (chain position, row id) where it was found (None: not in the chain)
    anchored_heads: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def _problem(self, row_id: int | None, message: str) -> None:
        if self.first_broken_row is None and row_id is not None:
            self.first_broken_row = row_id
        if len(self.problems) < 50:
            self.problems.append(message)


def audit_chain_head() -> tuple[int, str]:
    """(position, row hash) of the chain's last sealed row; (0, GENESIS) when nothing is."""
    head = AuditChainHead.objects.filter(pk=1).values_list("chain_seq", "row_hash").first()
    return (int(head[0]), str(head[1])) if head else (0, GENESIS)


def audit_row_at_hash(*, row_hash: str) -> tuple[int, int] | None:
    """(position, row id) of the sealed row with this hash, or None."""
    row = (
        AuditLog.objects.filter(row_hash=row_hash, chain_seq__isnull=False)
        .values_list("chain_seq", "id")
        .first()
    )
    return (int(row[0] or 0), int(row[1])) if row else None


def audit_chain_verify(*, anchored_heads: list[str] | None = None) -> AuditChainCheck:
    """Walk the sealed rows in chain order and name the first broken one: a row whose fields no
    longer give its hash or whose content no longer matches its digest (edited, unless a later
    `audit_log.redacted` row commits to the new content), a missing position or a previous hash
    that is not the hash of the row before (deleted), a chain shorter than its head (deleted
    from the end). `anchored_heads` (hex digests, e.g. the heads anchored on chain) must each be
    the hash of a row in the chain."""
    check = AuditChainCheck()
    wanted = {h.removeprefix("0x").lower() for h in anchored_heads or []}
    check.anchored_heads = dict.fromkeys(sorted(wanted))
    redactions: dict[int, set[str]] = {}
    for details in AuditLog.objects.filter(
        event=AuditEvent.AUDIT_LOG_REDACTED, chain_seq__isnull=False
    ).values_list("details", flat=True):
        for row_id, digest in (details.get("rows") or {}).items():
            if str(row_id).isdigit():
                redactions.setdefault(int(row_id), set()).add(str(digest))
    expected_seq, prev_hash, prev_id = 1, GENESIS, None
    fields = (
        "id", "chain_seq", "created_at", "event", "target_type", "target_id", "actor_label",
        "details", "content_sha256", "prev_hash", "row_hash",
    )  # fmt: skip
    rows = AuditLog.objects.filter(chain_seq__isnull=False).order_by("chain_seq").values(*fields)
    after = "the start of the log"
    for row in rows.iterator(chunk_size=2000):
        rid, seq = row["id"], row["chain_seq"]
        after = f"row id {prev_id}" if prev_id is not None else "the start of the log"
        if seq != expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
            check._problem(
                rid,
                f"deleted: chain position {missing} is missing after {after} "
                f"(row id {rid} is at position {seq})",
            )
        if row["prev_hash"] != prev_hash:
            check._problem(
                rid,
                f"row id {rid}: its previous hash is not the hash of {after} (a row between them "
                "was deleted, or that row was rewritten)",
            )
        computed = row_digest(
            chain_seq=seq,
            row_id=rid,
            created_at=row["created_at"],
            event=row["event"],
            target_type=row["target_type"],
            target_id=row["target_id"],
            content_sha256=row["content_sha256"],
            prev_hash=row["prev_hash"],
        )
        if computed != row["row_hash"]:
            check._problem(rid, f"edited: row id {rid} no longer matches its hash")
        content = content_digest(actor_label=row["actor_label"], details=row["details"])
        if content != row["content_sha256"]:
            if content in redactions.get(rid, ()):
                check.redacted_rows += 1
            else:
                check._problem(
                    rid,
                    f"edited: row id {rid}'s actor or details no longer match their digest "
                    "(and no redaction row records the change)",
                )
        if row["row_hash"] in wanted:
            check.anchored_heads[row["row_hash"]] = (seq, rid)
        check.rows_checked += 1
        expected_seq, prev_hash, prev_id = seq + 1, row["row_hash"], rid
    check.last_seq, check.last_row_id, check.last_hash = expected_seq - 1, prev_id, prev_hash
    head_seq, head_hash = audit_chain_head()
    if head_seq > check.last_seq:
        check._problem(
            prev_id,
            f"deleted: the chain ends at position {check.last_seq} (row id {prev_id}) but its "
            f"head is at position {head_seq}: the last rows were deleted",
        )
    elif head_seq == check.last_seq and head_hash != check.last_hash:
        check._problem(prev_id, f"the chain head's hash differs from row id {prev_id}'s hash")
    for digest, found in check.anchored_heads.items():
        if found is None:
            check._problem(
                None,
                f"the anchored head {digest} is not the hash of any row: the log was rewritten "
                "or rows were deleted before it",
            )
    check.unsealed = AuditLog.objects.filter(chain_seq__isnull=True).count()
    return check


def audit_chain_targets_after(*, chain_seq: int, limit: int = 100) -> list[tuple[str, str]]:
    """(target type, target id) of the sealed rows after position `chain_seq`, in chain order
    (at most `limit`)."""
    rows = AuditLog.objects.filter(chain_seq__gt=chain_seq).order_by("chain_seq")
    return [(t, i) for t, i in rows.values_list("target_type", "target_id")[:limit]]
