"""Poison isolation: no single reading a device sends keeps the rest of its batch from being
ingested. Each poison item is signed by a registered key (as an attacker holding one device key
would send it), mixed into a batch of 2,000, and must end in quarantine with a reason naming it
while the 1,999 others commit; a rejected date creates no partition; the HTTP gateway answers
202/422, never 500."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from django.db import connection
from django.test import TestCase
from django.urls import reverse

from apps.meters.models import Conflict, Quarantine, RawBatch, Reading
from apps.meters.readings import pipeline
from apps.meters.readings.partitions import partition_name
from apps.meters.readings.pipeline import raw_batch_store, reading_batch_ingest
from apps.meters.signing import SignedFields, sign_reading
from apps.meters.tests.factories import MeterFactory, gateway_auth, new_device_key

pytestmark = pytest.mark.django_db

Q = 900
T0 = (int(time.time()) // 86400 - 10) * 86400  # midnight UTC ten days ago
METERS = 20
PER_METER = 100  # 20 meters x 100 intervals = 2,000 readings
BIGINT = 2**63 - 1


@cache
def _keys() -> list[tuple[bytes, str, str]]:
    return [new_device_key() for _ in range(METERS)]


def _serial(i: int) -> str:
    return f"PSN-{i:04d}"


def _meters():
    return [
        MeterFactory(serial=_serial(i), key=False, public_key=public_hex, address=address)
        for i, (_private, public_hex, address) in enumerate(_keys())
    ]


def _unix(start: int | str) -> int:
    """The Unix seconds a device signs for `start` (0 where the signed uint cannot hold it)."""
    try:
        seconds = (
            start if isinstance(start, int) else int(datetime.fromisoformat(start).timestamp())
        )
    except ValueError:
        return 0
    return max(seconds, 0)


def _doc(private: bytes, serial: str, *, seq: int, start: int, imp: int = 100, **values) -> dict:
    fields = {"interval": Q, "export_wh": 0, "register_import_wh": 0, "register_export_wh": 0,
              "status": 0, **values}  # fmt: skip
    signed = SignedFields(serial, seq, _unix(start), fields["interval"], imp, fields["export_wh"],
                          fields["register_import_wh"], fields["register_export_wh"],
                          fields["status"])  # fmt: skip
    return {"v": 1, "serial": serial, "seq": seq, "start": start, "import_wh": imp, **fields,
            "sig": "0x" + sign_reading(private, signed).hex()}  # fmt: skip


@cache
def _good_docs() -> tuple[bytes, ...]:
    """1,999 valid signed readings (meter 0 leaves its last interval out)."""
    out = []
    for i, (private, _public, _address) in enumerate(_keys()):
        for n in range(PER_METER - (i == 0)):
            out.append(json.dumps(_doc(private, _serial(i), seq=n + 1, start=T0 + n * Q)).encode())
    return tuple(out)


def _ingest(poison: bytes):
    # each reading on its own meter's topic (the topic's serial must be the signed one)
    messages = [(f"t/meters/{json.loads(m)['serial']}/readings", m) for m in _good_docs()]
    messages.insert(len(messages) // 2, (f"t/meters/{_serial(0)}/readings", poison))
    with TestCase.captureOnCommitCallbacks(execute=True):
        batch_id = raw_batch_store(messages=messages)
        return reading_batch_ingest(batch_id=batch_id)


def _partition_exists(moment: datetime) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partition_name("meters_reading", moment)])
        return cursor.fetchone()[0] is not None


def _poison(field: str, value, *, start: int | None = None) -> bytes:
    private = _keys()[0][0]
    last = T0 + (PER_METER - 1) * Q
    values = {"seq": PER_METER, "start": last if start is None else start, field: value}
    if field == "start":
        values["start"] = value
    return json.dumps(_doc(private, _serial(0), **values)).encode()


POISONS = {
    # field, value -> (reason, words the detail must contain)
    "seq": (2**63, "out_of_range", "seq"),
    "imp": (BIGINT + 1, "out_of_range", "import_wh"),
    "export_wh": (2**64 - 1, "out_of_range", "export_wh"),
    "register_import_wh": (BIGINT + 1, "out_of_range", "register_import_wh"),
    "register_export_wh": (BIGINT + 1, "out_of_range", "register_export_wh"),
    "interval": (2**31, "out_of_range", "interval"),
    "start": (2**62, "start_out_of_range", "start"),
}


@pytest.mark.parametrize("path", ["new", "conflict"])
@pytest.mark.parametrize("field", sorted(POISONS))
def test_a_number_postgresql_cannot_store_is_quarantined_alone(field, path):
    _meters()
    value, reason, named = POISONS[field]
    if path == "conflict":  # the interval already holds a reading: the poison would conflict
        first = _doc(_keys()[0][0], _serial(0), seq=PER_METER, start=T0 + (PER_METER - 1) * Q)
        with TestCase.captureOnCommitCallbacks(execute=True):
            reading_batch_ingest(batch_id=raw_batch_store(messages=[("t", json.dumps(first)
                                                                     .encode())]))  # fmt: skip
        assert Reading.objects.count() == 1
    result = _ingest(_poison(field, value))
    assert (result.accepted, result.rejected) == (1999, 1)
    item = Quarantine.objects.get()
    assert item.reason == reason and named in item.detail
    assert Conflict.objects.count() == 0
    assert Reading.objects.count() == 1999 + (path == "conflict")
    assert RawBatch.objects.filter(status="pending").count() == 0


@pytest.mark.parametrize(
    "start, year",
    [
        ("2100-01-01T00:00:00Z", 2100),
        ("9999-12-31T23:45:00Z", 9999),
        (int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()), 2100),
        (253_402_300_800, 10000),  # year 10000 in Unix seconds
        ("10000-01-01T00:00:00Z", 10000),
        (-900, 1969),
        ("1900-01-01T00:00:00Z", 1900),
    ],
)
def test_a_start_outside_the_meters_window_is_quarantined_and_creates_no_partition(start, year):
    _meters()
    result = _ingest(_poison("start", start))
    assert (result.accepted, result.rejected) == (1999, 1)
    item = Quarantine.objects.get()
    assert item.reason == "start_out_of_range" and "start" in item.detail
    if 1970 <= year <= 9999:
        assert not _partition_exists(datetime(year, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("serial", ["PSN-0000\x00", "PSN-\ud800"])
def test_text_postgresql_cannot_store_is_quarantined_alone(serial):
    _meters()
    doc = json.loads(_poison("status", 0))
    poison = json.dumps({**doc, "serial": serial}).encode()  # \u0000 / lone \ud800 escapes
    result = _ingest(poison)
    assert (result.accepted, result.rejected) == (1999, 1)
    item = Quarantine.objects.get()
    assert item.reason == "bad_text" and "serial" in item.detail
    assert bytes(item.payload) == poison


def test_an_item_the_database_still_refuses_is_quarantined_alone_with_its_reason(monkeypatch):
    """Should a value pass every check and the database still refuse it, bisection finds it."""
    _meters()
    real_insert = pipeline.readings_insert

    def refusing_insert(rows, source):
        if any(row.import_wh == 4242 for row in rows):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1/0")  # the database refuses this piece
        return real_insert(rows, source)

    monkeypatch.setattr(pipeline, "readings_insert", refusing_insert)
    poison = json.dumps(_doc(_keys()[0][0], _serial(0), seq=PER_METER,
                             start=T0 + (PER_METER - 1) * Q, imp=4242)).encode()  # fmt: skip
    result = _ingest(poison)
    assert (result.accepted, result.rejected) == (1999, 1)
    item = Quarantine.objects.get()
    assert item.reason == "db_refused" and "division by zero" in item.detail
    assert bytes(item.payload) == poison
    assert RawBatch.objects.get().status == "processed"


def test_a_batch_that_fails_every_attempt_is_quarantined_whole(monkeypatch, settings):
    settings.METER_INGEST_MAX_ATTEMPTS = 2
    _meters()
    messages = [("t/a", m) for m in _good_docs()[:3]]
    batch_id = raw_batch_store(messages=messages)

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(pipeline, "_ingest_isolated", crash)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            reading_batch_ingest(batch_id=batch_id)
    monkeypatch.undo()
    result = reading_batch_ingest(batch_id=batch_id)
    assert (result.accepted, result.rejected) == (0, 3)
    assert set(Quarantine.objects.values_list("reason", flat=True)) == {"batch_stuck"}
    assert sorted(bytes(q.payload) for q in Quarantine.objects.all()) == sorted(
        m for _t, m in messages
    )
    assert RawBatch.objects.get(pk=batch_id).status == "processed"
    assert pipeline.pending_batches(older_than=timedelta(0)) == []


@pytest.mark.parametrize(
    "field, value",
    [("seq", 2**63), ("imp", BIGINT + 1), ("interval", 2**31), ("start", 2**62)],
)
def test_the_http_gateway_answers_422_for_poison_and_202_with_it_in_a_batch(client, field, value):
    _meters()
    url = reverse("meters-api:gateway_ingest")
    client.defaults.update(gateway_auth())
    poison = json.loads(_poison(field, value))
    with TestCase.captureOnCommitCallbacks(execute=True):
        alone = client.post(url, data=json.dumps(poison), content_type="application/json")
    assert alone.status_code == 422
    good = [json.loads(m) for m in _good_docs()[:5]]
    with TestCase.captureOnCommitCallbacks(execute=True):
        mixed = client.post(url, data=json.dumps({"v": 1, "readings": [*good, poison]}),
                            content_type="application/json")  # fmt: skip
    assert mixed.status_code == 202
    assert (mixed.json()["accepted"], mixed.json()["rejected"]) == (5, 1)
