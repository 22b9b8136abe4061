"""A device flooding its status topic (issue 17): the bridge checks at most
METER_STATUS_PER_SERIAL_PER_MINUTE of its status messages a minute, quarantines the first one
over as `rate_limited` (listed on the staff ingest page) and drops the rest unread; other meters'
readings and status go through. Real Mosquitto, real bridge process, real database."""

from __future__ import annotations

import json
import time
from collections import Counter

import coincurve
import pytest
from django.conf import settings
from django.urls import reverse

from apps.meters import mqtt_client
from apps.meters.models import Meter, Quarantine, Reading
from apps.meters.simulator import status_doc
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.mqtt import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.django_db(transaction=True)]

T0 = (int(time.time()) // 86400 - 10) * 86400
Q = 900
FLOOD = 500


def test_a_status_flood_is_throttled_flagged_and_stalls_nothing(
    bridge_factory, publisher_factory, mqtt_prefix, staff_client
):
    flooder, other = MeterFactory(), MeterFactory()
    bridge_factory()
    pub = publisher_factory()
    flood_topic = mqtt_client.status_topic(mqtt_prefix, flooder.serial)
    # Wrongly signed: each one the bridge looked at would cost a recovery and a quarantine row.
    forged = json.dumps(status_doc(flooder.serial, coincurve.PrivateKey().secret, now=time.time()))
    for _ in range(FLOOD):
        pub.infos.append(pub.client.publish(flood_topic, forged, qos=1))
    for k in range(3):  # readings of both meters after the flood
        for meter in (flooder, other):
            pub.publish(meter.serial, pub.reading(meter, T0 + k * Q, 100 + k))
    good = status_doc(other.serial, other.test_key, now=time.time(), firmware="7.7.7")
    pub.client.publish(mqtt_client.status_topic(mqtt_prefix, other.serial), json.dumps(good), qos=1)
    assert pub.wait_published()
    # The other meter's status, published last, is recorded: everything before it was handled.
    # (generous bounds: the pipeline is asynchronous and the CI machine shared)
    assert wait_for(lambda: Meter.objects.get(pk=other.pk).firmware_version == "7.7.7", 60)
    assert wait_for(lambda: Reading.objects.filter(meter__in=[flooder, other]).count() == 6, 60)
    limit = settings.METER_STATUS_PER_SERIAL_PER_MINUTE
    reasons = Counter(Quarantine.objects.filter(topic=flood_topic).values_list("reason", flat=True))
    assert reasons == {"bad_signature": limit, "rate_limited": 1}
    flagged = Quarantine.objects.get(topic=flood_topic, reason="rate_limited")
    assert flagged.serial == flooder.serial and f"more than {limit} status" in flagged.detail

    html = staff_client.get(reverse("meters:ingest")).content.decode()
    floods = html.split('id="status-floods"', 1)[1].split("</table>", 1)[0]
    assert flooder.serial in floods and other.serial not in floods
