"""Erasure of personal data the billing app holds: mandate account details and the payer names
on the member's bank entries. Amounts, dates, references and invoices stay (legal retention)."""

from __future__ import annotations

from django.db import transaction

from apps.billing.models import BankTransaction, JoinApplication, Mandate

ERASED_ACCOUNT = ""


@transaction.atomic
def billing_personal_data_erase(*, member_id: int, pseudonym: str) -> dict[str, int]:
    """Clear the account holder, IBAN and BIC of the member's mandates (an active one can no
    longer be collected on: it is revoked first) and the payer name of the bank entries matched
    to the member's invoices. Returns counts."""
    mandates = 0
    for mandate in Mandate.objects.filter(member_id=member_id).order_by("pk"):
        if mandate.status == Mandate.Status.ACTIVE:
            mandate.transition_to(Mandate.Status.REVOKED, actor=None)
        mandates += 1
    Mandate.objects.filter(member_id=member_id).update(
        account_holder=pseudonym, iban=ERASED_ACCOUNT, bic=ERASED_ACCOUNT
    )
    entries = (
        BankTransaction.objects.filter(invoice__member_id=member_id)
        .exclude(counterparty="")
        .update(counterparty=pseudonym)
    )
    applications = JoinApplication.objects.filter(member_id=member_id).update(
        email="",
        legal_name=pseudonym,
        street="",
        postal_code="",
        city="",
        site_street="",
        site_postal_code="",
        site_city="",
        account_holder=pseudonym,
        iban=ERASED_ACCOUNT,
        bic=ERASED_ACCOUNT,
    )
    return {"mandates": mandates, "bank_entries": entries, "join_applications": applications}
