"""Two claims of the same certificate at the same time: exactly one wins (row lock)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from apps.core.exceptions import ApplicationError
from apps.incentives.models import Certificate
from apps.incentives.services import certificate_claim, certificates_issue_for_hour

from .factories import PVMeterFactory, readings

T0 = datetime(2026, 6, 5, 12, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_certificate_claim_it_once():
    meter = PVMeterFactory()
    readings(meter, T0, [100] * 4)
    (cert,) = certificates_issue_for_hour(meter=meter, hour_start=T0)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def claim(beneficiary: str) -> None:
        try:
            barrier.wait()
            certificate_claim(certificate_id=cert.pk, member=meter.member, beneficiary=beneficiary)
            outcomes.append("claimed")
        except ApplicationError as exc:
            outcomes.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(f"B{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes)[1] == "claimed" and outcomes.count("claimed") == 1
    assert "only an active certificate" in sorted(outcomes)[0]
    cert.refresh_from_db()
    assert cert.status == "claimed" and Certificate.objects.filter(status="claimed").count() == 1
