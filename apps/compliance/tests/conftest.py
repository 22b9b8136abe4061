"""A small cooperative with a day of readings, certificates, a claim, a settled trade and a
statement — enough for every report to have data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from apps.accounts.tests.factories import AuditorUserFactory, StaffUserFactory
from apps.incentives.services import (
    certificates_claim_for_consumption,
    certificates_issue,
    certificates_transfer_for_settlement,
)
from apps.incentives.tests.factories import (
    MemberFactory,
    MeterFactory,
    PVMeterFactory,
    emission_factors,
    settled_run,
)
from apps.meters.models import Quality
from apps.meters.services import BackfillRow, readings_backfill
from tests.fixtures.core import login_with_mfa

DAY = datetime(2026, 6, 4, tzinfo=UTC)
MONTH = "2026-06"
Q = timedelta(minutes=15)


@dataclass
class World:
    producer: object
    consumer: object
    pv: object
    houses: list
    run: object
    trade: object


def _pv_wh(k: int) -> int:
    return 0 if not 24 <= k < 72 else 200 + 10 * (k % 7)


@pytest.fixture
def world(db) -> World:
    emission_factors(location="380", residual="520")
    pv = PVMeterFactory()
    producer = pv.member
    consumer = MemberFactory()
    houses = [
        MeterFactory(member=producer, asset_kind="household", direction="import"),
        MeterFactory(member=consumer, asset_kind="household", direction="import"),
    ]
    rows = []
    for k in range(96):
        t = DAY + k * Q
        rows.append(BackfillRow(meter_id=pv.pk, interval_start=t, import_wh=0, export_wh=_pv_wh(k)))
        for n, house in enumerate(houses):
            if n == 1 and k in (40, 41):
                continue  # two missing intervals
            quality = Quality.ESTIMATED if (n, k) == (0, 5) else Quality.VALID
            quality = Quality.EDITED if (n, k) == (1, 7) else quality
            rows.append(
                BackfillRow(meter_id=house.pk, interval_start=t, import_wh=120 + n * 30 + k % 5,
                            export_wh=0, quality=quality)
            )  # fmt: skip
    readings_backfill(rows=rows)
    certificates_issue(start=DAY, end=DAY + timedelta(days=1), now=DAY + timedelta(days=3))
    run, (trade,) = settled_run([(producer, consumer, DAY + timedelta(hours=12), 400)])
    from apps.market.services.settlement import trades_tree

    run.trades_root = "0x" + trades_tree(run=run).root.hex()
    run.save(update_fields=["trades_root"])
    certificates_transfer_for_settlement(settlement_run=run)
    for member in (producer, consumer):
        certificates_claim_for_consumption(
            member=member, start=DAY, end=DAY + timedelta(days=1), beneficiary=member.legal_name
        )
    # The producer's June billed (a draft invoice) for the billing ↔ chain reconciliation
    # report; the consumer has no supply contract (no statement, no invoice).
    from apps.billing.services import billing_run
    from apps.billing.tests.factories import SupplyContractFactory, SupplyTariffVersionFactory

    version = SupplyTariffVersionFactory()
    SupplyContractFactory(member=producer, tariff=version.tariff)
    billing_run(period=MONTH, now=DAY + timedelta(days=30))
    return World(producer, consumer, pv, houses, run, trade)


@pytest.fixture
def auditor_client(db):
    client = Client()
    login_with_mfa(client, AuditorUserFactory())
    return client


@pytest.fixture
def staff_client(db):
    client = Client()
    login_with_mfa(client, StaffUserFactory())
    return client


__all__ = ["DAY", "MONTH", "Decimal", "date"]
