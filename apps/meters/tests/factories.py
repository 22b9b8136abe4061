"""factory_boy factories and test helpers for meters. A meter gets a fresh secp256k1 key;
`meter.test_key` (not stored) holds the private key so tests can sign like the device.

Tests of other apps use the helpers below instead of the reading table: to look at what is
stored (`current_readings`, `reading_versions`), to change a stored value behind the services'
back as someone with database access would (`reading_tamper`), and to deliver device messages
through the real ingest pipeline (`messages_ingest`)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import coincurve
import factory
from django.db.models import QuerySet

from apps.accounts.tests.factories import MemberFactory
from apps.meters.models import Meter, Reading
from apps.meters.readings.pipeline import IngestResult, raw_batch_store, reading_batch_ingest
from apps.meters.signing import address_from_public_key


def new_device_key() -> tuple[bytes, str, str]:
    """(private key, uncompressed public key hex, checksummed address)."""
    private = os.urandom(32)
    public = coincurve.PrivateKey(private).public_key.format(compressed=False)
    return private, public.hex(), address_from_public_key(public)


class MeterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Meter
        skip_postgeneration_save = True

    serial = factory.Sequence(lambda n: f"TST-{n:06d}")
    member = factory.SubFactory(MemberFactory)
    direction = Meter.Direction.BIDIRECTIONAL
    interval_seconds = 900
    capacity_w = 30_000
    active_from = datetime(2020, 1, 1, tzinfo=UTC)
    public_key = ""
    address = ""

    @factory.post_generation
    def key(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook
        private, public_hex, address = new_device_key()
        if extracted is False:
            obj.test_key = None
            return
        obj.test_key = private
        obj.public_key = public_hex
        obj.address = address
        if create:
            obj.save(update_fields=["public_key", "address"])


def current_readings(**filters) -> QuerySet[Reading]:
    """The current version of each stored reading, filtered like `Reading.objects.filter`."""
    return Reading.objects.filter(is_current=True, **filters)


def reading_versions(**filters) -> QuerySet[Reading]:
    """Every stored version (corrections included), filtered like `Reading.objects.filter`."""
    return Reading.objects.filter(**filters)


def reading_tamper(*, meter, interval_start, **values) -> int:
    """Change the stored current reading of (meter, interval) in place, without a new version
    (what someone editing the database would do); values may be F() expressions."""
    return current_readings(meter=meter, interval_start=interval_start).update(**values)


def messages_ingest(messages: list[tuple[str, bytes]]) -> IngestResult:
    """(topic, payload) device messages through the real pipeline: stored raw, then ingested."""
    return reading_batch_ingest(batch_id=raw_batch_store(messages=messages))


def gateway_auth(name: str = "test-gateway") -> dict:
    """Request headers of an HTTP gateway holding a freshly issued token."""
    from apps.meters.services import gateway_token_issue

    return {"HTTP_AUTHORIZATION": f"Bearer {gateway_token_issue(name=name)}"}


def reading_correct(*, meter, interval_start, reason: str, **values) -> int:
    """Store a device-signed correction of (meter, interval) as version + 1 with a reason (the
    legitimate way a stored reading changes); returns the new version."""
    from apps.meters.readings.store import ReadingRow, readings_insert, readings_supersede
    from apps.meters.readings.versions import readings_changed
    from apps.meters.signing import SignedFields, sign_reading

    old = current_readings(meter=meter, interval_start=interval_start).get()
    start = int(interval_start.timestamp())
    fields = {
        "import_wh": old.import_wh, "export_wh": old.export_wh,
        "register_import_wh": old.register_import_wh, "register_export_wh": old.register_export_wh,
        "status": old.status, **values,
    }  # fmt: skip
    signed = SignedFields(meter.serial, old.seq or 0, start, old.interval_seconds, **fields)
    readings_supersede([(meter.pk, start, old.version)])
    readings_insert(
        [
            ReadingRow(
                meter.pk,
                start,
                old.version + 1,
                old.interval_seconds,
                fields["import_wh"],
                fields["export_wh"],
                fields["register_import_wh"],
                fields["register_export_wh"],
                fields["status"],
                old.seq or 0,
                sign_reading(meter.test_key, signed),
                old.quality,
                0,
                reason,
                None,
            )
        ],  # fmt: skip
        source="backfill",
    )
    readings_changed(meter_ids=[meter.pk])  # as every writer does (rollups_mark_dirty)
    return old.version + 1


def readings_landed(*, meter_ids: list[int]) -> None:
    """As if new readings of these meters had just been stored: new readings versions (what
    every writer does through `rollups_mark_dirty`), so the member pages compute afresh."""
    from apps.meters.readings.versions import readings_changed

    readings_changed(meter_ids=meter_ids)


def reading_table_queries(captured: list[dict]) -> list[dict]:
    """The captured queries (CaptureQueriesContext) that read or write the readings table."""
    return [q for q in captured if "meters_reading" in q["sql"]]
