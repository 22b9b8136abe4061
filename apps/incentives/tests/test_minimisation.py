"""Data minimisation between members: a buyer sees a bought certificate's origin as technology,
zone and capacity, never the seller's meter serial or the token id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from apps.incentives.models import Certificate
from apps.incentives.services import (
    certificates_issue_for_hour,
    certificates_transfer_for_settlement,
)

from .factories import MemberFactory, PVMeterFactory, readings, settled_run

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 3, 10, tzinfo=UTC)


def test_buyer_sees_origin_but_not_the_sellers_meter_or_token():
    pv = PVMeterFactory()
    seller, buyer = pv.member, MemberFactory()
    readings(pv, T0, [500, 500, 500, 500])
    (cert,) = certificates_issue_for_hour(meter=pv, hour_start=T0)
    run, _ = settled_run([(seller, buyer, T0, 300)])
    certificates_transfer_for_settlement(settlement_run=run)
    bought = Certificate.objects.get(owner=buyer, status="active")

    client = Client()
    client.force_login(buyer.user)
    html = client.get(reverse("incentives:certificates")).content.decode()
    assert f'data-certificate="{bought.pk}"' in html
    assert pv.serial not in html
    assert str(cert.token_id) not in html
    assert f"{pv.capacity_w // 1000} kW" in html
    assert bought.market_zone in html

    client.force_login(seller.user)
    own = client.get(reverse("incentives:certificates")).content.decode()
    assert pv.serial in own  # the producer sees their own meter
