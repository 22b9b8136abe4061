"""A device that does not answer is flagged where staff look: the admin's "answering" filter."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.grid.services.dispatch import flexible_device_heard
from apps.grid.tests.factories import BatteryFactory, EVChargerFactory
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db


def test_admin_filters_devices_left_out_of_dispatch(client, staff_user):
    silent = EVChargerFactory(unresponsive_since=timezone.now(), missed_commands=2)
    answering = BatteryFactory()
    login_with_mfa(client, staff_user)
    url = reverse("admin:grid_flexibledevice_changelist")

    left_out = client.get(url, {"answering": "no"}).content.decode()
    assert silent.serial in left_out and answering.serial not in left_out
    answers = client.get(url, {"answering": "yes"}).content.decode()
    assert answering.serial in answers and silent.serial not in answers

    flexible_device_heard(device_id=silent.pk)  # it answered again
    assert silent.serial not in client.get(url, {"answering": "no"}).content.decode()
