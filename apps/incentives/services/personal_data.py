"""Erasure of personal data the incentives app holds: claim beneficiaries."""

from __future__ import annotations

from django.db import transaction

from apps.incentives.models import Certificate


@transaction.atomic
def certificates_beneficiary_erase(*, member_id: int, pseudonym: str) -> int:
    """Replace the beneficiary (a legal name the member chose) on the member's certificates.
    Returns the number of certificates changed; their Wh, lineage and chain references stay."""
    return (
        Certificate.objects.filter(owner_id=member_id)
        .exclude(beneficiary="")
        .update(beneficiary=pseudonym)
    )
