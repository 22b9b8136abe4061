"""SEPA: direct-debit mandates (IBAN/BIC validated with schwifty), the pain.008 collection and the
pain.001 payout files of a month (sepaxml, validated against the pain XSDs on export)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sepaxml import SepaDD, SepaTransfer

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.billing.lock_objects import (
    billing_run_lock,
    mandate_lock,
    member_active_mandate_lock,
)
from apps.billing.models import (
    Invoice,
    Mandate,
    PaymentInstruction,
    PaymentMethod,
    SepaFile,
)
from apps.billing.selectors import documents_to_pay, member_active_mandate
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor

PAIN_008 = "pain.008.001.02"
PAIN_001 = "pain.001.001.03"


def _account(*, iban: str, bic: str) -> tuple[str, str]:
    try:
        checked = IBAN(iban)
    except SchwiftyException as exc:
        raise ApplicationError(f"Invalid IBAN: {exc}.", {"iban": iban}) from exc
    try:
        checked_bic = BIC(bic) if bic else checked.bic
    except SchwiftyException as exc:
        raise ApplicationError(f"Invalid BIC: {exc}.", {"bic": bic}) from exc
    if checked_bic is None:
        raise ApplicationError("The BIC is needed for this IBAN.", {"iban": iban})
    return checked.compact, checked_bic.compact


@transaction.atomic
def mandate_create(
    *,
    member,
    reference: str,
    signed_on: date,
    account_holder: str,
    iban: str,
    bic: str = "",
    actor: Actor = None,
) -> Mandate:
    """Record a signed mandate; it replaces (revokes) the member's active one."""
    iban, bic = _account(iban=iban, bic=bic)
    if Mandate.objects.filter(reference=reference).exists():
        raise ApplicationError("This mandate reference is taken.", {"reference": reference})
    current = member_active_mandate_lock(member=member)
    if current is not None:
        mandate_revoke(mandate=current, actor=actor)
    mandate = Mandate.objects.create(
        member=member,
        reference=reference,
        signed_on=signed_on,
        account_holder=account_holder,
        iban=iban,
        bic=bic,
    )
    audit_log_write(
        event=AuditEvent.MANDATE_CREATED,
        actor=actor,
        target=mandate,
        details={"reference": reference, "iban_last4": iban[-4:]},
    )
    return mandate


@transaction.atomic
def mandate_revoke(*, mandate: Mandate, actor: Actor = None) -> Mandate:
    mandate = mandate_lock(mandate.pk)
    mandate.transition_to(Mandate.Status.REVOKED, actor=actor, event=AuditEvent.MANDATE_REVOKED)
    return mandate


def _config() -> dict[str, Any]:
    seller = settings.BILLING_SELLER
    return {
        "name": seller["name"],
        "IBAN": seller["iban"],
        "BIC": seller["bic"],
        "batch": True,
        "creditor_id": seller["creditor_id"],
        "currency": settings.BILLING_CURRENCY,
    }


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _end_to_end_id(invoice: Invoice) -> str:
    return f"{invoice.number}-{invoice.instructions.count() + 1}"


@transaction.atomic
def sepa_files_create(
    *,
    period: date,
    actor: Actor = None,
    now: datetime | None = None,
    execution_date: date | None = None,
) -> dict[str, Any]:
    """The month's pain.008 (direct-debit invoices) and pain.001 (members owed money) files
    for every issued document no file carries yet. Idempotent: a second call finds nothing
    new and creates no file. Documents that cannot go to the bank are reported, not dropped."""
    now = now or timezone.now()
    execution_date = execution_date or (now.date() + timedelta(days=5))
    billing_run_lock(period=period, now=now)  # one file run per month at once
    debits: list[tuple[Invoice, Mandate]] = []
    credits: list[tuple[Invoice, Mandate]] = []
    missing_mandate: list[str] = []
    for document in documents_to_pay(period=period):
        pays = document.gross > 0 and document.payment_method == PaymentMethod.DIRECT_DEBIT
        owed = document.gross < 0
        if not (pays or owed):
            continue  # paid by transfer, or zero
        mandate = member_active_mandate(member=document.member)
        if mandate is None:
            missing_mandate.append(document.number)
        elif pays:
            debits.append((document, mandate))
        else:
            credits.append((document, mandate))
    files = []
    if debits:
        files.append(_collection_file(period=period, items=debits, day=execution_date))
    if credits:
        files.append(_transfer_file(period=period, items=credits, day=execution_date))
    result = {
        "period": f"{period:%Y-%m}",
        "files": [
            {"name": f.name, "kind": f.kind, "count": f.count, "total": str(f.total)} for f in files
        ],
        "missing_mandate": missing_mandate,
    }
    audit_log_write(
        event=AuditEvent.SEPA_FILES_CREATED,
        actor=actor,
        target_type="billing.sepafile",
        target_id=",".join(str(f.pk) for f in files),
        details=result,
    )
    return result


def _store(
    *, sepa, period: date, kind: str, day: date, items: list[tuple[Invoice, Mandate]], ids
) -> SepaFile:
    content = sepa.export(validate=True).decode()  # raises unless the XSD accepts it
    total = sum((abs(invoice.gross) for invoice, _ in items), Decimal("0.00"))
    sepa_file = SepaFile.objects.create(
        period=period,
        kind=kind,
        message_id=sepa.msg_id[:35],
        name=f"{kind}-{period:%Y-%m}-{sepa.msg_id[:35]}.xml",
        execution_date=day,
        count=len(items),
        total=total,
        content=content,
    )
    PaymentInstruction.objects.bulk_create(
        PaymentInstruction(
            invoice=invoice,
            sepa_file=sepa_file,
            mandate=mandate,
            end_to_end_id=e2e,
            amount=abs(invoice.gross),
        )
        for (invoice, mandate), e2e in zip(items, ids, strict=True)
    )
    return sepa_file


def _collection_file(*, period: date, items: list[tuple[Invoice, Mandate]], day: date) -> SepaFile:
    sepa = SepaDD(_config(), schema=PAIN_008, clean=True)
    ids = []
    for invoice, mandate in items:
        first = mandate.first_collected_on is None
        e2e = _end_to_end_id(invoice)
        ids.append(e2e)
        sepa.add_payment(
            {
                "name": mandate.account_holder,
                "IBAN": mandate.iban,
                "BIC": mandate.bic,
                "amount": _cents(invoice.gross),
                "type": "FRST" if first else "RCUR",
                "collection_date": day,
                "mandate_id": mandate.reference,
                "mandate_date": mandate.signed_on,
                "description": f"{invoice.get_kind_display()} {invoice.number}",
                "endtoend_id": e2e,
            }
        )
        if first:
            Mandate.objects.filter(pk=mandate.pk).update(first_collected_on=day)
            mandate.first_collected_on = day
    return _store(sepa=sepa, period=period, kind=SepaFile.Kind.COLLECTION, day=day, items=items,
                  ids=ids)  # fmt: skip


def _transfer_file(*, period: date, items: list[tuple[Invoice, Mandate]], day: date) -> SepaFile:
    sepa = SepaTransfer(_config(), schema=PAIN_001, clean=True)
    ids = []
    for invoice, mandate in items:
        e2e = _end_to_end_id(invoice)
        ids.append(e2e)
        sepa.add_payment(
            {
                "name": mandate.account_holder,
                "IBAN": mandate.iban,
                "BIC": mandate.bic,
                "amount": _cents(-invoice.gross),
                "execution_date": day,
                "description": f"{invoice.get_kind_display()} {invoice.number}",
                "endtoend_id": e2e,
            }
        )
    return _store(sepa=sepa, period=period, kind=SepaFile.Kind.TRANSFER, day=day, items=items,
                  ids=ids)  # fmt: skip
