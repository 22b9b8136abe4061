"""Resolving a reading conflict (`conflict_resolve`): accepting makes the conflicting value the
interval's current reading as a new version (the old one kept), dismissing changes the status
only; both need a reason, are audit-logged and idempotent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.tests.factories import AuditorUserFactory, StaffUserFactory
from apps.audit.models import AuditLog
from apps.core.exceptions import ApplicationError, InvalidTransition
from apps.meters.models import Conflict, MeterRollup, Source
from apps.meters.readings.rollups import rollups_refresh
from apps.meters.services import (
    ConflictDecision,
    conflict_resolve,
    default_seq,
    device_messages_deliver,
)
from apps.meters.signing import (
    SignedFields,
    reading_digest,
    recover_address,
    sign_reading,
)
from apps.meters.tests.factories import MeterFactory, current_readings, reading_versions
from apps.meters.vee import Flag
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _message(meter, import_wh: int) -> tuple[str, bytes]:
    seq = default_seq(START)
    fields = SignedFields(meter.serial, seq, int(START.timestamp()), 900, import_wh, 0, 0, 0, 0)
    doc = {"v": 1, "serial": meter.serial, "seq": seq, "start": "2026-11-02T09:00:00Z",
           "interval": 900, "import_wh": import_wh, "export_wh": 0, "register_import_wh": 0,
           "register_export_wh": 0, "status": 0,
           "sig": "0x" + sign_reading(meter.test_key, fields).hex()}  # fmt: skip
    return "test/readings", json.dumps(doc).encode()


@pytest.fixture
def staff_user():
    return StaffUserFactory()


@pytest.fixture
def conflict():
    meter = MeterFactory()
    for wh in (100, 140):  # the same interval twice with different values: a conflict
        device_messages_deliver(messages=[_message(meter, wh)])
    return Conflict.objects.get(meter=meter)


def test_accepting_makes_the_value_current_as_a_new_version_and_is_idempotent(conflict, staff_user):
    conflict_resolve(
        conflict=conflict,
        decision=ConflictDecision.ACCEPT,
        reason="meter swapped, the re-sent value is right",
        actor=staff_user,
    )
    current = current_readings(meter=conflict.meter, interval_start=START).get()
    assert (current.import_wh, current.version, current.source) == (140, 2, Source.CONFLICT)
    assert current.reason == "conflict accepted: meter swapped, the re-sent value is right"
    assert current.flags & Flag.CONFLICT
    # The device's own signature travels with the value: it still verifies.
    fields = SignedFields(conflict.meter.serial, current.seq, int(START.timestamp()), 900,
                          current.import_wh, current.export_wh, 0, 0, current.status)  # fmt: skip
    signer = recover_address(reading_digest(fields), bytes(current.signature))
    assert signer.lower() == conflict.meter.address.lower()
    old = reading_versions(meter=conflict.meter, interval_start=START, version=1).get()
    assert (old.import_wh, old.is_current) == (100, False)  # the previous version is kept
    rollups_refresh()
    hour = MeterRollup.objects.get(meter=conflict.meter, granularity="hour", period_start=START)
    assert hour.import_wh == 140
    conflict.refresh_from_db()
    assert conflict.status == Conflict.Status.ACCEPTED and conflict.resolved_at is not None
    entry = AuditLog.objects.get(event="conflict.accepted")
    assert entry.details["reason"] == "meter swapped, the re-sent value is right"
    assert entry.actor == staff_user and entry.details["version"] == 2
    # Again: nothing new.
    conflict_resolve(
        conflict=conflict, decision=ConflictDecision.ACCEPT, reason="again", actor=staff_user
    )
    assert reading_versions(meter=conflict.meter, interval_start=START).count() == 2
    assert AuditLog.objects.filter(event="conflict.accepted").count() == 1


def test_dismissing_keeps_the_stored_reading_and_refuses_a_later_accept(conflict, staff_user):
    with pytest.raises(ApplicationError, match="reason"):
        conflict_resolve(
            conflict=conflict, decision=ConflictDecision.DISMISS, reason=" ", actor=staff_user
        )
    conflict_resolve(
        conflict=conflict,
        decision=ConflictDecision.DISMISS,
        reason="a replayed message",
        actor=staff_user,
    )
    conflict.refresh_from_db()
    assert conflict.status == Conflict.Status.DISMISSED
    current = current_readings(meter=conflict.meter, interval_start=START).get()
    assert (current.import_wh, current.version) == (100, 1)
    assert (
        AuditLog.objects.get(event="conflict.dismissed").details["reason"] == "a replayed message"
    )
    with pytest.raises(InvalidTransition):
        conflict_resolve(
            conflict=conflict,
            decision=ConflictDecision.ACCEPT,
            reason="changed mind",
            actor=staff_user,
        )
    assert reading_versions(meter=conflict.meter, interval_start=START).count() == 1


CHANGELIST = reverse("admin:meters_conflict_changelist")


def _client(user) -> Client:
    client = Client()
    login_with_mfa(client, user)
    return client


def test_staff_accept_in_the_admin_after_a_confirmation_page_with_a_reason(conflict):
    client = _client(StaffUserFactory())
    page = client.get(reverse("admin:meters_conflict_change", args=[conflict.pk])).content.decode()
    assert 'id="conflict-accept"' in page and 'id="conflict-dismiss"' in page
    assert '<select name="status"' not in page  # the status is not edited by hand
    asked = client.post(CHANGELIST, {"action": "accept", "_selected_action": [conflict.pk]})
    assert b'id="conflict-confirmation"' in asked.content and b'name="reason"' in asked.content
    no_reason = {"action": "accept", "_selected_action": [conflict.pk], "confirm": "yes"}
    assert b'id="conflict-confirmation"' in client.post(CHANGELIST, no_reason).content
    conflict.refresh_from_db()
    assert conflict.status == Conflict.Status.OPEN  # nothing happens before a reasoned confirm
    done = client.post(CHANGELIST, {**no_reason, "reason": "value re-read on site"}, follow=True)
    assert "1 conflict accepted." in done.content.decode()
    conflict.refresh_from_db()
    assert conflict.status == Conflict.Status.ACCEPTED
    assert current_readings(meter=conflict.meter, interval_start=START).get().import_wh == 140
    page = client.get(reverse("admin:meters_conflict_change", args=[conflict.pk])).content.decode()
    assert 'id="conflict-accept"' not in page  # decided: no more buttons


def test_auditors_see_no_buttons_and_cannot_decide(conflict):
    client = _client(AuditorUserFactory())
    page = client.get(reverse("admin:meters_conflict_change", args=[conflict.pk]))
    assert page.status_code == 200 and b'id="conflict-accept"' not in page.content
    for action in ("accept", "dismiss"):
        response = client.post(
            CHANGELIST,
            {"action": action, "_selected_action": [conflict.pk], "confirm": "yes", "reason": "x"},
        )
        assert response.status_code == 403
    conflict.refresh_from_db()
    assert conflict.status == Conflict.Status.OPEN
