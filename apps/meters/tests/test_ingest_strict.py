"""Strict message format v1: each rule rejects with a reason of its own and leaves a quarantine
row; fuzzing the parser and the HTTP gateway ends every input as a reading, duplicate, conflict
or quarantine row, never as an exception or a 500."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.test import Client, TestCase
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.meters.models import Conflict, Quarantine, RawBatch, Reading
from apps.meters.readings.wire import parse_message
from apps.meters.signing import SECP256K1_HALF_N, signature_problem
from apps.meters.tests.factories import MeterFactory, gateway_auth, messages_ingest
from tests.fixtures.mqtt import Publisher

pytestmark = pytest.mark.django_db

Q = 900
T0 = (int(time.time()) // 86400 - 2) * 86400
N = int.from_bytes(
    bytes.fromhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
)


def _ingest(*docs_or_bytes):
    messages = [
        ("t/meters/x/readings", d if isinstance(d, bytes) else json.dumps(d).encode())
        for d in docs_or_bytes
    ]
    with TestCase.captureOnCommitCallbacks(execute=True):
        return messages_ingest(messages)


def _reasons():
    return sorted(Quarantine.objects.values_list("reason", flat=True))


@pytest.mark.parametrize("v", [2, "1", None, 1.0, True, "missing"])
def test_v_must_be_exactly_the_integer_1(v):
    meter = MeterFactory()
    doc = Publisher.reading(meter, T0, 100)
    doc = {k: val for k, val in doc.items() if k != "v"} if v == "missing" else {**doc, "v": v}
    result = _ingest(doc)
    assert result.accepted == 0 and _reasons() == ["bad_version"]
    gateway = {"v": v, "readings": [Publisher.reading(meter, T0 + Q, 100)]}
    if v == "missing":
        del gateway["v"]
    assert _ingest(gateway).accepted == 0
    assert _reasons() == ["bad_version", "bad_version"]


def test_signatures_must_be_canonical_like_openzeppelin_ecdsa_recover():
    meter = MeterFactory()
    doc = Publisher.reading(meter, T0, 100)
    sig = bytes.fromhex(doc["sig"][2:])
    zero_one = sig[:64] + bytes([sig[64] - 27])  # v ∈ {0, 1}
    s = int.from_bytes(sig[32:64])
    high_s = sig[:32] + (N - s).to_bytes(32) + bytes([55 - sig[64]])  # the malleated twin
    assert signature_problem(sig) is None and sig[32:64] <= SECP256K1_HALF_N
    assert "27 or 28" in signature_problem(zero_one)
    assert "upper half" in signature_problem(high_s)
    result = _ingest({**doc, "sig": "0x" + zero_one.hex()}, {**doc, "sig": "0x" + high_s.hex()})
    assert result.accepted == 0 and _reasons() == ["noncanonical_sig", "noncanonical_sig"]
    assert _ingest(doc).accepted == 1


def test_seq_must_increase_with_the_interval_also_when_a_gap_is_filled_late():
    meter = MeterFactory()
    _ingest(*[Publisher.reading(meter, T0 + i * Q, 100, seq=10 + i) for i in (0, 1, 2, 5)])
    assert Reading.objects.count() == 4
    late_low = Publisher.reading(meter, T0 + 3 * Q, 100, seq=11)  # below interval 2's seq 12
    late_equal = Publisher.reading(meter, T0 + 4 * Q, 100, seq=15)  # interval 5's seq again
    newer_lower = Publisher.reading(meter, T0 + 6 * Q, 100, seq=14)
    result = _ingest(late_low, late_equal, newer_lower)
    assert result.accepted == 0
    assert _reasons() == ["reordered_seq", "reordered_seq", "replayed_seq"]
    assert _ingest(Publisher.reading(meter, T0 + 3 * Q, 100, seq=13)).accepted == 1


def test_start_must_be_on_the_interval_grid():
    meter = MeterFactory()
    doc = Publisher.reading(meter, T0, 100)
    half_second = datetime.fromtimestamp(T0 + 0.5, UTC).isoformat()
    off_grid = Publisher.reading(meter, T0 + 30, 100)
    assert _ingest({**doc, "start": half_second}, off_grid).accepted == 0
    assert _reasons() == ["misaligned", "misaligned"]
    assert (
        "fraction of a second"
        in Quarantine.objects.filter(detail__contains="fraction").get().detail
    )


def test_an_invalid_json_number_is_malformed():
    meter = MeterFactory()
    doc = Publisher.reading(meter, T0, 143)
    raw = json.dumps(doc).encode().replace(b'"import_wh": 143', b'"import_wh": 0143')
    assert b"0143" in raw
    assert _ingest(raw).accepted == 0 and _reasons() == ["malformed"]
    assert bytes(Quarantine.objects.get().payload) == raw


def test_an_empty_gateway_message_and_a_reading_carrying_readings_leave_a_quarantine_row():
    meter = MeterFactory()
    doc = Publisher.reading(meter, T0, 100)
    result = _ingest({"v": 1, "readings": []}, {**doc, "readings": []})
    assert (result.accepted, result.rejected) == (0, 2)
    assert _reasons() == ["malformed", "malformed"]
    details = sorted(Quarantine.objects.values_list("detail", flat=True))
    assert "empty" in details[0] and "readings" in details[1]
    inner = {"v": 1, "readings": [{**doc, "readings": []}]}
    assert _ingest(inner).rejected == 1


# --- fuzzing: no exception escapes; every input ends as a row -----------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = ["v", "serial", "seq", "start", "interval", "import_wh", "export_wh",
        "register_import_wh", "register_export_wh", "status", "sig", "readings"]  # fmt: skip
READINGISH = st.dictionaries(st.sampled_from(KEYS), JSON, max_size=12)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON.map(lambda d: json.dumps(d).encode()),
    READINGISH.map(lambda d: json.dumps(d).encode()),
    st.lists(READINGISH, max_size=4).map(lambda r: json.dumps({"v": 1, "readings": r}).encode()),
)
FUZZ = {"deadline": None, "suppress_health_check": list(HealthCheck)}


@settings(max_examples=3000, **FUZZ)
@given(BODIES)
def test_parse_message_never_raises_and_accounts_for_every_input(body):
    readings, rejects = parse_message(body, topic="t", raw_message_id=1, max_bytes=4096)
    assert readings or rejects  # nothing vanishes


@settings(max_examples=300, **FUZZ)
@given(body=BODIES)
def test_the_http_gateway_never_answers_500_and_leaves_a_row_for_every_body(body):
    with transaction.atomic():
        sid = transaction.savepoint()
        client = Client(**gateway_auth(f"fuzz-{time.time_ns()}"))  # own rate-limit window
        response = client.post(reverse("meters-api:gateway_ingest"), data=body,
                               content_type="application/json")  # fmt: skip
        assert response.status_code in (202, 422)
        batch = RawBatch.objects.get(pk=response.json()["batch"])
        assert batch.status == "processed"
        rows = (Reading.objects.filter(raw_message_id__isnull=False).count()
                + Conflict.objects.count() + Quarantine.objects.count())  # fmt: skip
        assert rows + batch.duplicates >= 1
        transaction.savepoint_rollback(sid)
