"""Meter exchange (issue 19, acceptance 3): the old meter's final register reading closes its
share of the exchange interval, the new meter continues from its initial register, register
totals are continuous across the two, and VEE raises no false gap, spike or register mismatch
at the boundary — while a genuine spike right after the exchange is still flagged."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.test import TestCase

from apps.audit.models import AuditLog
from apps.core.exceptions import ApplicationError
from apps.meters import vee
from apps.meters.models import Meter, MeterRegisterRead, Quality
from apps.meters.readings.pipeline import raw_batch_store, reading_batch_ingest
from apps.meters.selectors import (
    ingest_stats,
    member_interval_energy,
    meter_quality_counts,
    meter_registry,
)
from apps.meters.services import gaps_estimate, meter_exchange
from apps.meters.tests.factories import MeterFactory, current_readings, new_device_key
from tests.fixtures.mqtt import Publisher

pytestmark = pytest.mark.django_db

Q = 900
T0 = (int(time.time()) // 86400 - 3) * 86400 + 12 * 3600  # noon UTC three days ago
X = T0 + 4 * Q  # the exchange interval
AT = datetime.fromtimestamp(X + 300, UTC)  # the technician swaps the meter 5 minutes into it


def _ingest(*docs) -> None:
    batch = raw_batch_store(
        messages=[("p/meters/x/readings", json.dumps(d).encode()) for d in docs]
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        reading_batch_ingest(batch_id=batch)


def _at(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _exchanged(new_first_wh: int):
    """Old meter: four measured intervals of 100 Wh (registers 5100…5400), swapped at AT with a
    final register of 5440; the new meter starts at 12 Wh and reports X, X+Q, X+2Q."""
    old = MeterFactory()
    _ingest(*(Publisher.reading(old, T0 + k * Q, 100, reg_i=5100 + 100 * k) for k in range(4)))
    private, public_hex, address = new_device_key()
    exchange = meter_exchange(
        old_meter=old, new_serial=f"{old.serial}-N", new_public_key=public_hex, at=AT,
        old_final_register_wh=5440, new_initial_register_wh=12, actor="test",
    )  # fmt: skip
    device = SimpleNamespace(serial=f"{old.serial}-N", test_key=private)
    reg = 12 + new_first_wh
    _ingest(
        Publisher.reading(device, X, new_first_wh, reg_i=reg),
        Publisher.reading(device, X + Q, 100, reg_i=reg + 100),
        Publisher.reading(device, X + 2 * Q, 100, reg_i=reg + 200),
    )
    old.refresh_from_db()
    return old, exchange.new_meter, address


def test_register_totals_are_continuous_and_vee_flags_nothing_at_the_exchange():
    old, new, address = _exchanged(new_first_wh=60)
    readings = {
        (r.meter_id, int(r.interval_start.timestamp())): r
        for r in current_readings(meter_id__in=[old.pk, new.pk])
    }
    # The exchange interval is measured by both, nothing lost nor counted twice:
    # (old final − old previous) + (new first − new initial) = 40 + 60.
    assert readings[(old.pk, X)].import_wh == 40 and readings[(new.pk, X)].import_wh == 60
    energy = member_interval_energy(member_ids=[old.member_id], start=_at(T0), end=_at(X + 3 * Q))
    assert energy[(old.member_id, _at(X))].import_wh == 100
    # Register totals across both meters equal the sum of the interval values.
    total_by_registers = (5440 - 5000) + (12 + 60 + 200 - 12)
    assert sum(e.import_wh for e in energy.values()) == total_by_registers == 700
    # VEE: every reading valid; the new meter's first is checked against its initial register.
    assert {r.quality for r in readings.values()} == {Quality.VALID}
    assert not any(r.flags & ~int(vee.INFORMATIONAL) for r in readings.values())
    assert readings[(new.pk, X)].flags & vee.Flag.METER_EXCHANGE
    # No gap: nothing to estimate, and each meter is complete over its own active period.
    assert gaps_estimate(meter_ids=[old.pk, new.pk], start=_at(T0), end=_at(X + 3 * Q)) == 0
    registry = {m.pk: m for m in meter_registry() if m.pk in (old.pk, new.pk)}
    assert registry[old.pk].active_to == _at(X + Q) and registry[new.pk].active_from == _at(X)
    counts = meter_quality_counts(start=_at(T0), end=_at(X + 3 * Q))
    assert (counts[old.pk].present, counts[new.pk].present) == (5, 3)
    # The retired meter is never "not heard from"; the new one is at the same site and member.
    later = datetime.now(UTC) + timedelta(hours=2)
    assert old.pk not in {m["id"] for m in ingest_stats(now=later)["silent_meters"]}
    assert (new.member_id, new.connection_point_id) == (old.member_id, old.connection_point_id)
    assert new.address == address and new.typical_wh
    assert set(MeterRegisterRead.objects.values_list("meter_id", "register_import_wh")) == {
        (old.pk, 5440),
        (new.pk, 12),
    }
    log = AuditLog.objects.get(event="meter.exchanged", target_id=str(old.pk))
    assert log.details["new_serial"] == new.serial and log.details["old_final_register_wh"] == 5440


def test_a_genuine_spike_right_after_the_exchange_is_still_flagged():
    _old, new, _ = _exchanged(new_first_wh=5000)
    first = current_readings(meter_id=new.pk, interval_start=_at(X)).get()
    assert first.quality == Quality.QUESTIONABLE and first.flags & vee.Flag.SPIKE
    assert not first.flags & vee.Flag.REGISTER_MISMATCH  # its register is consistent


def test_an_exchange_needs_the_old_meters_previous_reading_and_a_sane_final_register():
    old = MeterFactory()
    _, public_hex, _ = new_device_key()
    with pytest.raises(ApplicationError, match="no reading of the interval"):
        meter_exchange(old_meter=old, new_serial="N-1", new_public_key=public_hex, at=AT,
                       old_final_register_wh=1, new_initial_register_wh=0)  # fmt: skip
    _ingest(Publisher.reading(old, X - Q, 100, reg_i=900))
    with pytest.raises(ApplicationError, match="below its last reading"):
        meter_exchange(old_meter=old, new_serial="N-1", new_public_key=public_hex, at=AT,
                       old_final_register_wh=899, new_initial_register_wh=0)  # fmt: skip
    assert not Meter.objects.filter(serial="N-1").exists()


def test_staff_exchange_a_meter_through_a_confirmation_page_and_auditors_cannot():
    from django.test import Client

    from apps.accounts.tests.factories import AuditorUserFactory, StaffUserFactory
    from tests.fixtures.core import login_with_mfa

    old = MeterFactory()
    _ingest(Publisher.reading(old, X - Q, 100, reg_i=900))
    _, public_hex, _ = new_device_key()
    url = "/admin/meters/meter/"
    form = {"action": "exchange", "_selected_action": [old.pk], "stage": "confirm",
            "new_serial": "EXCH-NEW-1", "new_public_key": public_hex,
            "at": AT.strftime("%Y-%m-%d %H:%M:%S"), "old_final_register_wh": 940,
            "new_initial_register_wh": 0}  # fmt: skip
    auditor = Client()
    login_with_mfa(auditor, AuditorUserFactory())
    assert auditor.post(url, {**form, "confirm": "yes"}).status_code == 403
    staff = Client()
    login_with_mfa(staff, StaffUserFactory())
    page = staff.post(url, form)  # the confirmation page: nothing exchanged yet
    assert page.status_code == 200 and b"confirm-summary" in page.content
    assert not Meter.objects.filter(serial="EXCH-NEW-1").exists()
    assert staff.post(url, {**form, "confirm": "yes"}).status_code == 302
    old.refresh_from_db()
    assert old.active_to == _at(X + Q) and Meter.objects.filter(serial="EXCH-NEW-1").exists()
    assert AuditLog.objects.get(event="meter.exchanged").actor_id is not None
