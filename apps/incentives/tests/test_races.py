"""Two claims of the same certificate at the same time: exactly one wins (row lock)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from apps.core.exceptions import ApplicationError
from apps.core.locks import lock_row
from apps.incentives.lock_objects import (
    active_certificates_lock_for_correction,
    active_certificates_lock_for_transfer,
)
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


@pytest.mark.django_db(transaction=True)
def test_a_correction_and_a_transfer_locking_the_same_certificates_never_deadlock():
    """A correction works newest range first and a transfer by token and range; both lock the
    certificates in primary-key order, so one waits for the other instead of deadlocking."""
    meter = PVMeterFactory()
    readings(meter, T0, [100] * 4)
    (cert,) = certificates_issue_for_hour(meter=meter, hour_start=T0)
    start = cert.range_start
    for i in range(4):  # four active certificates of one token: 100 Wh each
        cert.pk = None
        cert.range_start, cert.range_end = start + 100 * i, start + 100 * (i + 1)
        cert.save()
    Certificate.objects.filter(range_start=start, range_end=start + 400).delete()
    token = cert.token_id

    def correction() -> list[int]:
        return [c.range_start for c in active_certificates_lock_for_correction(token)]

    def transfer() -> list[int]:
        found = active_certificates_lock_for_transfer(seller_id=meter.member_id, hour_start=T0)
        return [c.range_start for c in found]

    ranges = [start + 100 * i for i in range(4)]
    second = Certificate.objects.get(token_id=token, range_start=ranges[1])
    held, release = threading.Event(), threading.Event()

    def hold_the_second_range() -> list[int]:
        """Hold one certificate in the middle while both sides queue up behind it: locking in
        different orders, each would then hold a row the other waits for."""
        lock_row(Certificate.objects.all(), second.pk)
        held.set()
        release.wait(30)
        return []

    holder = threading.Thread(target=_at_once, args=({"holder": hold_the_second_range},))
    holder.start()
    assert held.wait(10)
    threading.Timer(0.5, release.set).start()
    results, errors = _at_once({"correction": correction, "transfer": transfer})
    holder.join(30)
    assert errors == []
    assert results == {"correction": ranges[::-1], "transfer": ranges}


def _at_once(locks: dict) -> tuple[dict, list]:
    """Run each lock function in its own transaction and thread, all starting together, each
    holding its locks a moment while the others ask for them."""
    barrier = threading.Barrier(len(locks))
    results: dict[str, list[int]] = {}
    errors: list[Exception] = []

    def run(name: str, lock) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                results[name] = lock()
                time.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - surfaced by the caller's assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in locks.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors
