"""Sources of notifications other than DR (which has its acceptance test): a meter that went
silent is reported once per silence. (Invoices, returned debits and certificates are checked
in their apps' tests.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.meters.services import meters_offline_notify
from apps.meters.tests.factories import MeterFactory
from apps.notifications.models import Notification

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def test_a_silent_meter_is_reported_to_its_member_once_per_silence(settings):
    settings.METERS_OFFLINE_AFTER_MINUTES = 120
    silent = MeterFactory(last_seen=NOW - timedelta(hours=3))
    reporting = MeterFactory(last_seen=NOW - timedelta(minutes=30))
    MeterFactory(last_seen=None)  # never installed: not "offline"

    assert meters_offline_notify(now=NOW) == 1
    assert meters_offline_notify(now=NOW + timedelta(hours=1)) == 0  # same silence
    (note,) = Notification.objects.all()
    assert note.member == silent.member and silent.serial in note.subject
    # Back, then silent again: a new notification.
    silent.last_seen = NOW + timedelta(hours=2)
    silent.save(update_fields=["last_seen"])
    reporting.last_seen = NOW + timedelta(hours=4, minutes=45)
    reporting.save(update_fields=["last_seen"])
    assert meters_offline_notify(now=NOW + timedelta(hours=5)) == 1
    assert list(Notification.objects.values_list("member_id", flat=True)) == [silent.member_id] * 2
