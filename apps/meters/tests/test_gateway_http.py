"""The HTTP gateway: a token per gateway issued by staff (401 without), 413 over the size limit
(nothing stored), and answers that do not tell an unknown serial from a bad signature (staff see
the detail)."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.core.management import call_command
from django.test import TestCase
from django.urls import reverse

from apps.meters.models import Quarantine, RawBatch
from apps.meters.tests.factories import MeterFactory, gateway_auth
from tests.fixtures.mqtt import Publisher

pytestmark = pytest.mark.django_db

T0 = (int(time.time()) // 86400 - 2) * 86400
URL = "meters-api:gateway_ingest"


def test_a_body_over_the_limit_is_refused_with_413_and_not_stored(client, settings):
    settings.MQTT_MAX_MESSAGE_BYTES = 1000
    client.defaults.update(gateway_auth())
    response = client.post(reverse(URL), data=b"x" * 1001, content_type="application/json")
    assert response.status_code == 413
    assert RawBatch.objects.count() == 0
    meter = MeterFactory()
    ok = client.post(reverse(URL), data=json.dumps(Publisher.reading(meter, T0, 5)),
                     content_type="application/json")  # fmt: skip
    assert ok.status_code == 202


def _unknown_and_forged(meter):
    unknown = {**Publisher.reading(meter, T0, 5), "serial": "NOT-REGISTERED"}
    forged = {**Publisher.reading(meter, T0, 5), "import_wh": 6}
    return unknown, forged


def test_devices_cannot_tell_an_unknown_serial_from_a_bad_signature(client):
    meter = MeterFactory()
    client.defaults.update(gateway_auth())
    answers = []
    for doc in _unknown_and_forged(meter):
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post(reverse(URL), data=json.dumps(doc),
                                   content_type="application/json")  # fmt: skip
        body = response.json()
        answers.append((response.status_code, body["rejects_by_reason"], body["rejected"]))
    assert answers[0] == answers[1] == (422, {"bad_signature": 1}, 1)
    # the quarantine keeps the real reasons for staff
    assert sorted(Quarantine.objects.values_list("reason", flat=True)) == [
        "bad_signature",
        "unknown_meter",
    ]


def test_staff_see_the_real_reason(staff_client):
    meter = MeterFactory()
    unknown, _forged = _unknown_and_forged(meter)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = staff_client.post(reverse(URL), data=json.dumps(unknown),
                                     content_type="application/json", **gateway_auth())  # fmt: skip
    assert response.json()["rejects_by_reason"] == {"unknown_meter": 1}


def test_a_gateway_needs_the_token_staff_issued_it(client):
    meter = MeterFactory()
    doc = json.dumps(Publisher.reading(meter, T0, 5))
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": "x"}):
        response = client.post(reverse(URL), data=doc, content_type="application/json", **headers)
        assert response.status_code == 401
    assert RawBatch.objects.count() == 0
    out = io.StringIO()
    call_command("gateway_token_issue", "roof-7", stdout=out)
    token = out.getvalue().strip()
    with TestCase.captureOnCommitCallbacks(execute=True):
        ok = client.post(reverse(URL), data=doc, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert ok.status_code == 202
    assert RawBatch.objects.get().bridge == "http:roof-7"
    call_command("gateway_token_issue", "roof-7", stdout=io.StringIO())  # re-issue revokes
    again = client.post(reverse(URL), data=doc, content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert again.status_code == 401


def test_a_gateway_over_its_rate_is_answered_429(client, settings):
    settings.METER_GATEWAY_REQUESTS_PER_MINUTE = 2
    meter = MeterFactory()
    client.defaults.update(gateway_auth(f"rate-{time.time_ns()}"))
    doc = json.dumps(Publisher.reading(meter, T0, 5))
    statuses = []
    with TestCase.captureOnCommitCallbacks(execute=True):
        for _ in range(3):
            statuses.append(client.post(reverse(URL), data=doc,
                                        content_type="application/json").status_code)  # fmt: skip
    assert statuses[:2] == [202, 202] and statuses[2] == 429
    assert RawBatch.objects.count() == 2


def test_readings_of_one_serial_over_its_rate_are_quarantined_and_answered_429(client, settings):
    settings.METER_GATEWAY_READINGS_PER_SERIAL_PER_MINUTE = 2
    busy = MeterFactory(serial=f"RL-{time.time_ns()}")  # a serial no earlier run has counted
    calm = MeterFactory(serial=f"RL-{time.time_ns()}")
    batch = {"v": 1, "readings": [Publisher.reading(busy, T0 + i * 900, 5 + i, seq=i + 1)
                                  for i in range(3)]}  # fmt: skip

    def post(doc, gateway: str):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return client.post(reverse(URL), data=json.dumps(doc), content_type="application/json",
                               **gateway_auth(f"{gateway}-{time.time_ns()}"))  # fmt: skip

    first = post(batch, "gw-a")
    assert first.status_code == 429 and first["Retry-After"] == "60"
    assert (first.json()["accepted"], first.json()["rejects_by_reason"]) == (2, {"rate_limited": 1})
    # the limit is per serial over every gateway: another gateway gets nothing through for it
    second = post({"v": 1, "readings": [Publisher.reading(busy, T0 + 3 * 900, 9, seq=4)]}, "gw-b")
    assert second.status_code == 429 and second.json()["accepted"] == 0
    # the excess is kept, with its reason, for staff to re-process
    kept = Quarantine.objects.filter(reason="rate_limited", serial=busy.serial)
    assert kept.count() == 2 and all(json.loads(bytes(q.payload)) for q in kept)
    # another meter is not affected
    assert post(Publisher.reading(calm, T0, 5), "gw-a").status_code == 202
    # an unregistered serial is counted alike: its answer does not tell that it is unknown
    ghost = {**Publisher.reading(busy, T0, 5), "serial": f"RL-GHOST-{time.time_ns()}"}
    answer = post({"v": 1, "readings": [ghost] * 3}, "gw-c")
    assert answer.status_code == 429
    assert answer.json()["rejects_by_reason"] == {"bad_signature": 2, "rate_limited": 1}
