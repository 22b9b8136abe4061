"""Certificate issuance, transfer, claim and cancel against the real database."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.core.exceptions import ApplicationError
from apps.incentives.models import Certificate
from apps.incentives.services import (
    certificate_cancel,
    certificate_claim,
    certificates_issue,
    certificates_issue_for_hour,
    shared_asset_shares_set,
)
from apps.meters.tests.factories import current_readings, reading_tamper

from .factories import MemberFactory, PVMeterFactory, SharedAssetFactory, readings

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=2)


def _validated_export_by_hour(meter_ids):
    out = defaultdict(int)
    for r in current_readings(meter_id__in=meter_ids):
        out[(r.meter_id, r.interval_start.replace(minute=0))] += r.export_wh
    return out


def _certified_by_hour():
    out = defaultdict(int)
    for c in Certificate.objects.filter(parent__isnull=True):
        out[(c.device_id, c.production_start)] += c.wh
    return out


def test_certificate_wh_equals_validated_export_for_every_producer_and_hour():
    rng = random.Random(7)
    solo = PVMeterFactory()
    asset = SharedAssetFactory()
    owners = MemberFactory.create_batch(3)
    shared_asset_shares_set(
        asset=asset,
        shares={owners[0]: Decimal("33.3333"), owners[1]: Decimal("33.3333"),
                owners[2]: Decimal("33.3334")},
    )  # fmt: skip
    for meter in (solo, asset.meter):
        readings(meter, T0, [rng.randint(0, 2501) for _ in range(4 * 24)])

    summary = certificates_issue(start=T0, end=T0 + timedelta(days=1), now=NOW)

    expected = _validated_export_by_hour([solo.pk, asset.meter_id])
    got = _certified_by_hour()
    # Every producer and hour with generation is certified to the Wh (none lost or created).
    assert {k: v for k, v in expected.items() if v} == got
    assert summary.wh == sum(expected.values())
    # The shared plant's certificates are spread over the three shareholders, ~one third each.
    per_owner = defaultdict(int)
    for c in Certificate.objects.filter(device=asset.meter):
        per_owner[c.owner_id] += c.wh
    total = sum(per_owner.values())
    assert set(per_owner) == {o.pk for o in owners}
    assert all(abs(v - total / 3) < 2 for v in per_owner.values())
    # Each owner is told once for the run (inbox), with the Wh certified for them.
    from apps.notifications.models import Notification

    notes = {n.member_id: n for n in Notification.objects.filter(kind="certificate_issued")}
    assert set(notes) == {solo.member_id, *per_owner}
    assert f"{per_owner[owners[0].pk] / 1000:.1f} kWh" in notes[owners[0].pk].subject
    # Re-running issues nothing new.
    again = certificates_issue(start=T0, end=T0 + timedelta(days=1), now=NOW)
    assert again.wh == 0 and _certified_by_hour() == got
    assert Notification.objects.filter(kind="certificate_issued").count() == len(notes)


def test_incomplete_and_recent_hours_wait():
    meter = PVMeterFactory()
    readings(meter, T0, [100, 100, 100])  # a gap in the last quarter-hour
    summary = certificates_issue(start=T0, end=T0 + timedelta(hours=2), now=NOW)
    assert summary.wh == 0 and summary.skipped[0]["why"] == "gaps"
    readings(meter, NOW - timedelta(hours=1), [100] * 4)  # too recent (issue lag)
    assert certificates_issue(start=T0, end=NOW, now=NOW).wh == 0


def test_upward_correction_issues_the_difference_as_a_new_range():
    meter = PVMeterFactory()
    readings(meter, T0, [100] * 4)
    first = certificates_issue_for_hour(meter=meter, hour_start=T0)
    assert [(c.range_start, c.range_end) for c in first] == [(0, 400)]
    reading_tamper(meter=meter, interval_start=T0, export_wh=150)
    second = certificates_issue_for_hour(meter=meter, hour_start=T0)
    assert [(c.range_start, c.range_end) for c in second] == [(400, 450)]


def test_claim_with_beneficiary_then_claiming_again_fails():
    meter = PVMeterFactory()
    readings(meter, T0, [250] * 4)
    (cert,) = certificates_issue_for_hour(meter=meter, hour_start=T0)
    part = certificate_claim(
        certificate_id=cert.pk, member=meter.member, beneficiary="Bakery Ltd", wh=300
    )
    assert (part.status, part.wh, part.beneficiary) == ("claimed", 300, "Bakery Ltd")
    rest = Certificate.objects.get(parent=cert, status="active")
    assert rest.wh == 700 and rest.owner == meter.member
    with pytest.raises(ApplicationError, match="already|only an active"):
        certificate_claim(certificate_id=part.pk, member=meter.member, beneficiary="Again")
    part.refresh_from_db()
    assert part.beneficiary == "Bakery Ltd"
    assert AuditLog.objects.filter(event=AuditEvent.CERTIFICATE_CLAIMED).count() == 1


def test_cancelled_certificate_cannot_be_claimed_and_others_cannot_claim_mine():
    meter = PVMeterFactory()
    readings(meter, T0, [10] * 4)
    (cert,) = certificates_issue_for_hour(meter=meter, hour_start=T0)
    with pytest.raises(ApplicationError, match="not yours"):
        certificate_claim(certificate_id=cert.pk, member=MemberFactory(), beneficiary="X")
    certificate_cancel(certificate_id=cert.pk, reason="meter replaced")
    with pytest.raises(ApplicationError, match="cancelled"):
        certificate_claim(certificate_id=cert.pk, member=meter.member, beneficiary="X")


def test_downward_correction_cancels_the_excess_and_rerun_is_stable():
    meter = PVMeterFactory()
    readings(meter, T0, [100] * 4)
    certificates_issue(start=T0, end=T0 + timedelta(hours=1), now=NOW)
    reading_tamper(meter=meter, interval_start=T0, export_wh=40)
    certificates_issue(start=T0, end=T0 + timedelta(hours=1), now=NOW)
    live = Certificate.objects.filter(device=meter).exclude(status__in=["transferred", "cancelled"])
    assert sum(c.wh for c in live) == 340  # the validated Wh again
    cancelled = Certificate.objects.get(device=meter, status="cancelled")
    assert (cancelled.wh, cancelled.cancelled_reason) == (60, "downward correction")
    assert certificates_issue(start=T0, end=T0 + timedelta(hours=1), now=NOW).hours == 0
    assert Certificate.objects.filter(device=meter).count() == 3  # root, rest, cancelled part


def test_hourly_task_certifies_recent_complete_hours():
    from django.utils import timezone

    from apps.incentives.tasks import certificates_issue_recent_task

    meter = PVMeterFactory()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    readings(meter, hour, [25] * 4)
    assert certificates_issue_recent_task(hours=48)["wh"] == 100
    assert certificates_issue_recent_task(hours=48)["wh"] == 0


def test_certificates_issue_command_prints_what_it_issued():
    import io
    import json

    from django.core.management import call_command

    meter = PVMeterFactory()
    readings(meter, T0, [10] * 4)
    out = io.StringIO()
    call_command("certificates_issue", "--start", "2026-06-01", "--end", "2026-06-02", stdout=out)
    assert json.loads(out.getvalue())["wh"] == 40


def test_a_moved_meters_production_is_certified_to_the_occupant_of_its_hour():
    from apps.meters.services import meter_assign

    before = MemberFactory()
    meter = PVMeterFactory(member=before)
    readings(meter, T0, [100] * 8)  # two hours
    after = MemberFactory()
    meter_assign(meter=meter, member_id=after.pk, since=T0 + timedelta(hours=1), actor="test")
    (early,) = certificates_issue_for_hour(meter=meter, hour_start=T0)
    (late,) = certificates_issue_for_hour(meter=meter, hour_start=T0 + timedelta(hours=1))
    assert (early.owner_id, late.owner_id) == (before.pk, after.pk)


def _lockable_elsewhere(meter_pk: int) -> bool:
    """Can another connection (an ingest worker) take the meter's row lock right now?"""
    import threading

    from django.db import DatabaseError, connection, transaction

    from apps.core.locks import lock_row
    from apps.meters.models import Meter

    result: list[bool] = []

    def run() -> None:
        try:
            with transaction.atomic():
                result.append(lock_row(Meter.objects.all(), meter_pk, nowait=True).pk == meter_pk)
        except DatabaseError:
            result.append(False)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return result == [True]


@pytest.mark.django_db(transaction=True)
def test_a_long_issue_run_does_not_hold_the_meters_it_has_done(monkeypatch):
    """Each device-hour commits on its own: a worker waiting for a meter the run has finished
    gets it at once, not when the whole run (minutes, in the demo) ends."""
    from apps.incentives.services import certificates as service

    meters = [PVMeterFactory(), PVMeterFactory()]
    for meter in meters:
        readings(meter, T0, [250] * 8)
    issue_for_hour = service.certificates_issue_for_hour
    seen: list[int] = []
    probes: list[bool] = []

    def probe_then_issue(*, meter, hour_start, actor=None):
        if seen and meter.pk != seen[0] and not probes:
            probes.append(_lockable_elsewhere(seen[0]))  # the first meter's hours are done
        seen.append(meter.pk)
        return issue_for_hour(meter=meter, hour_start=hour_start, actor=actor)

    monkeypatch.setattr(service, "certificates_issue_for_hour", probe_then_issue)
    summary = certificates_issue(start=T0, end=T0 + timedelta(hours=2), now=NOW)

    assert summary.hours == 4
    assert probes == [True]
