"""Member-isolation cases of the incentives app (collected by tests/test_member_isolation.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.urls import reverse

from apps.accounts.testing import IsolationCase


def _certificate_claim_url(member) -> str:
    from apps.incentives.services import certificates_issue_for_hour

    from .factories import PVMeterFactory, readings

    hour = datetime(2026, 6, 1, 10, tzinfo=UTC)
    meter = PVMeterFactory(member=member)
    readings(meter, hour, [100] * 4)
    (cert,) = certificates_issue_for_hour(meter=meter, hour_start=hour)
    return reverse("incentives:certificate_claim", args=[cert.pk])


ISOLATION_CASES = [
    IsolationCase(
        "incentives:certificate_claim", _certificate_claim_url, "post", {"beneficiary": "Me"}
    ),
]
ISOLATION_EXEMPT = {
    "incentives:registry_cancel": "staff only: members and auditors get 403 (test_access.py)",
}
