"""factory_boy factories for meters. A meter gets a fresh secp256k1 key; `meter.test_key`
(not stored) holds the private key so tests can sign like the device."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import coincurve
import factory

from apps.accounts.tests.factories import MemberFactory
from apps.meters.models import Meter
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
