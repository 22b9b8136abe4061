from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.lock_objects import member_lock
from apps.accounts.selectors import actor_user
from apps.accounts.services import user_identity_erase
from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.audit.services import (
    audit_actor_label_replace,
    audit_details_scrub,
    audit_log_write,
)
from apps.billing.services.personal_data import billing_personal_data_erase
from apps.chain.services import document_anchor_submit
from apps.compliance.lock_objects import erasure_request_lock
from apps.compliance.models import ErasureRequest
from apps.compliance.reports import (
    REPORT_ANCHOR_KIND,
    report_format_check,
    report_render,
    report_render_stream,
)
from apps.compliance.reports.document import ReportDocument
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.grid.services.personal_data import connection_points_location_erase
from apps.incentives.selectors import certificate_beneficiaries
from apps.incentives.services.personal_data import certificates_beneficiary_erase
from apps.market.selectors import member_open_settlements_count
from apps.notifications.services import notifications_member_erase

if TYPE_CHECKING:
    from apps.accounts.models import Member


# --- report exports --------------------------------------------------------------------------


def report_export_record(
    *,
    actor: Actor,
    kind: str,
    fmt: str,
    params: dict[str, Any],
    content_hash: str,
    rows: int,
    anchor_intent: int | None = None,
) -> AuditLog:
    """Audit one report download (every export is logged: who, what, which data hash)."""
    return audit_log_write(
        event=AuditEvent.REPORT_EXPORTED,
        actor=actor,
        target_type="compliance.report",
        target_id=kind,
        details={
            "format": fmt,
            "params": params,
            "content_sha256": content_hash,
            "rows": rows,
            "anchor_intent": anchor_intent,
        },
    )


@transaction.atomic
def _report_export_prepare(*, doc: ReportDocument, fmt: str, actor: Actor) -> None:
    """Queue the content hash for anchoring (one outbox intent per content hash, signed later
    by the documents duty key), put the anchor reference in the document and audit the
    export: all before the first byte of the file is written, so the hash the file declares
    is the one anchored and audited (a streamed report's hash comes from the builder's first
    pass over its rows)."""
    digest = "0x" + doc.content_hash
    intent = document_anchor_submit(kind=REPORT_ANCHOR_KIND, digest=digest, actor=actor)
    doc.document_anchor = {
        "kind": REPORT_ANCHOR_KIND,
        "digest": digest,
        "intent": intent.pk,
        "network": intent.network,
    }
    report_export_record(
        actor=actor,
        kind=doc.kind,
        fmt=fmt,
        params=doc.params,
        content_hash=doc.content_hash,
        rows=doc.row_count,
        anchor_intent=intent.pk,
    )


@transaction.atomic
def report_export(*, doc: ReportDocument, fmt: str, actor: Actor) -> tuple[bytes, str, str]:
    """Export a built report as one file: queue its content hash for anchoring on chain, put
    the anchor reference in the file, seal and render it, and audit the export. XLSX and PDF
    reports above their configured row limits are refused (ApplicationError naming CSV).
    Returns (body, content type, filename)."""
    report_format_check(doc, fmt)
    _report_export_prepare(doc=doc, fmt=fmt, actor=actor)
    return report_render(doc, fmt)


def report_export_stream(*, doc: ReportDocument, actor: Actor) -> tuple[Iterator[bytes], str, str]:
    """Export a built report as a CSV stream (any size, constant memory): anchoring intent and
    audit record are committed first, then the returned iterator writes the sealed file in
    chunks. Returns (chunks, content type, filename)."""
    _report_export_prepare(doc=doc, fmt="csv", actor=actor)
    return report_render_stream(doc)


# --- member data rights ----------------------------------------------------------------------


def member_open_settlements(*, member: Member) -> list[str]:
    """Why the member's ledgers are still open (empty when none): open orders, or trades and
    settlement lines in runs that are not settled yet."""
    counts = member_open_settlements_count(member=member)
    reasons = []
    if counts.open_orders:
        reasons.append(f"{counts.open_orders} open order(s)")
    if counts.unsettled_trades:
        reasons.append(
            f"{counts.unsettled_trades} trade(s) in settlement runs that are not settled"
        )
    if counts.unsettled_lines:
        reasons.append(f"{counts.unsettled_lines} settlement line(s) in runs that are not settled")
    return reasons


@transaction.atomic
def erasure_request_create(*, member: Member, actor: Actor = None) -> ErasureRequest:
    """A member asks for erasure; staff handle it. One open request at a time."""
    existing = ErasureRequest.objects.filter(
        member=member, status=ErasureRequest.Status.REQUESTED
    ).first()
    if existing is not None:
        return existing
    if member.pseudonymised_at:
        raise ApplicationError("Your personal data has already been erased.", {})
    request = ErasureRequest.objects.create(member=member)
    audit_log_write(event=AuditEvent.ERASURE_REQUEST_CREATED, actor=actor, target=request)
    return request


@transaction.atomic
def member_erase(*, member: Member, actor: Actor, request: ErasureRequest | None = None) -> Member:
    """Pseudonymise a member's personal data (staff). Refused, with nothing changed, while the
    member has open settlements or was already erased.

    Cleared: legal name (→ "Erased member <number>"), street, postal code, city, the login's email
    (→ an undeliverable pseudonym), first/last name, password (unusable), login disabled; the
    email in audit-log actor labels. Kept, so everything stays verifiable: membership number,
    meters and readings, trades, settlement lines, statements, certificates, rewards, the
    wallet/custodial chain address and every chain reference.
    """

    member = member_lock(member.pk, with_user=True)
    if member.pseudonymised_at:
        raise ApplicationError(
            f"Member {member.membership_number} was already erased on "
            f"{member.pseudonymised_at:%Y-%m-%d}.",
            {"member": member.membership_number},
        )
    reasons = member_open_settlements(member=member)
    if reasons:
        message = (
            f"Member {member.membership_number} cannot be erased yet: "
            + "; ".join(reasons)
            + ". Settle (or cancel) them first."
        )
        raise ApplicationError(message, {"member": member.membership_number, "open": reasons})
    pseudonym = f"Erased member {member.membership_number}"
    user = member.user
    # Every personal field listed in apps/compliance/personal_data.py is cleared here or by the
    # owning app's erasure service; the texts are also scrubbed from the audit trail.
    personal_texts = [
        member.legal_name,
        member.street,
        user.email,
        user.first_name,
        user.last_name,
        *certificate_beneficiaries(member_id=member.pk),
    ]
    erased = {
        "identity": user_identity_erase(user=user, email_pseudonym=pseudonym),
        "site_locations": connection_points_location_erase(member_id=member.pk),
        "beneficiaries": certificates_beneficiary_erase(member_id=member.pk, pseudonym=pseudonym),
        "billing": billing_personal_data_erase(member_id=member.pk, pseudonym=pseudonym),
        "notifications": notifications_member_erase(member_id=member.pk),
    }
    old_email = user.email
    member.legal_name = pseudonym
    member.street = ""
    member.postal_code = ""
    member.city = ""
    member.chain_salt = ""  # on-chain hashes can no longer be linked to the member
    member.pseudonymised_at = timezone.now()
    member.save(
        update_fields=[
            "legal_name", "street", "postal_code", "city", "chain_salt", "pseudonymised_at",
        ]
    )  # fmt: skip
    user.email = f"erased-{member.pk}@erased.invalid"
    user.first_name = ""
    user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save(update_fields=["email", "first_name", "last_name", "is_active", "password"])
    audit_actor_label_replace(old=old_email, new=pseudonym)
    erased["audit_rows"] = audit_details_scrub(texts=personal_texts, replacement=pseudonym)
    if request is not None:
        request.handled_at = timezone.now()
        request.handled_by = actor_user(actor)
        request.outcome = "Personal data pseudonymised; ledgers and chain references kept."
        request.transition_to(
            ErasureRequest.Status.COMPLETED,
            actor=actor,
            update_fields=["handled_at", "handled_by", "outcome"],
        )
    audit_log_write(
        event=AuditEvent.MEMBER_ERASED,
        actor=actor,
        target=member,
        details={
            "membership_number": member.membership_number,
            "request": getattr(request, "pk", None),
            "erased": erased,
        },
    )
    return member


@transaction.atomic
def erasure_request_refuse(*, request: ErasureRequest, actor: Actor, reason: str) -> ErasureRequest:
    request = erasure_request_lock(request.pk)
    request.handled_at = timezone.now()
    request.handled_by = actor_user(actor)
    request.outcome = reason[:2000]
    request.transition_to(
        ErasureRequest.Status.REFUSED,
        actor=actor,
        event=AuditEvent.ERASURE_REQUEST_REFUSED,
        details={"reason": reason},
        update_fields=["handled_at", "handled_by", "outcome"],
    )
    return request
