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
