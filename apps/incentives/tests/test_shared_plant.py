"""Acceptance 4 (issue 19): the shared plant pays. Over a month of 15-minute readings the plant's
output is settled by the market (its meter belongs to the plant's settlement account), and each
month its revenue (revenue share) or its kWh (generation kWh) are allocated to the shareholders
by largest remainder: the parts sum exactly to the settled figure and each shareholder's credit
appears on their invoice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import F, Sum

from apps.billing.models import InvoiceLine
from apps.billing.services import billing_run
from apps.billing.tests.factories import SupplyContractFactory, SupplyTariffVersionFactory
from apps.core.exceptions import ApplicationError
from apps.incentives.models import AssetShare, SharedAsset, SharedAssetCredit
from apps.incentives.services import shared_asset_period_settle, shared_assets_settle_month
from apps.market.models import SettlementLine, SettlementRun
from apps.market.services.settlement import settlement_run_settle
from apps.market.tests.factories import TariffFactory
from apps.meters.models import Meter

from .factories import MemberFactory, PVMeterFactory, SharedAssetFactory, readings

pytestmark = pytest.mark.django_db

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def _month_of_output(seed: int) -> list[int]:
    """30 days × 96 quarter hours: uneven winter production between 08:00 and 16:00 UTC."""
    return [
        (100 + (q * 7 + d * 13 + seed) % 57) if 32 <= q < 64 else 0
        for d in range(30)
        for q in range(96)
    ]


def _plant(mode: str, seed: int, holders) -> SharedAsset:
    account = MemberFactory()  # the plant's settlement account (the cooperative's own)
    meter = PVMeterFactory(member=account, asset_kind=Meter.AssetKind.SHARED_PV)
    plant = SharedAssetFactory(meter=meter, mode=mode)
    for member, ppm in zip(holders, (333_334, 333_333, 333_333), strict=True):
        AssetShare.objects.create(asset=plant, member=member, share_ppm=ppm)
    readings(meter, NOV, _month_of_output(seed))
    return plant


def test_a_month_of_plant_output_is_settled_allocated_exactly_and_credited_on_invoices(client):
    TariffFactory()  # the market's tariff: unsold export at its feed-in price
    holders = [MemberFactory() for _ in range(3)]
    version = SupplyTariffVersionFactory()
    for member in holders:
        SupplyContractFactory(member=member, tariff=version.tariff)
    revenue_plant = _plant(SharedAsset.Mode.REVENUE_SHARE, 1, holders)
    kwh_plant = _plant(SharedAsset.Mode.GENERATION_KWH, 2, holders)

    # Before the month's settlement is complete, nothing is allocated.
    run = SettlementRun.objects.create(period_start=NOV, period_end=DEC, status="metered")
    with pytest.raises(ApplicationError, match="settlement is not complete"):
        shared_asset_period_settle(asset=revenue_plant, month=date(2026, 11, 1), now=DEC)
    settlement_run_settle(run=run, now=DEC)
    results = shared_assets_settle_month(month=date(2026, 11, 1), now=DEC + timedelta(days=1))
    assert set(results) == {revenue_plant.name, kwh_plant.name}

    for plant in (revenue_plant, kwh_plant):
        period = plant.periods.get()
        metered = sum(_month_of_output(1 if plant == revenue_plant else 2))
        settled = SettlementLine.objects.filter(member=plant.meter.member).aggregate(
            wh=Sum("export_wh"), money=Sum(F("p2p_sale") + F("grid_export"))
        )
        # The plant's output is settled (sold at the market's feed-in price here) …
        assert period.produced_wh == settled["wh"] == metered
        assert period.revenue_cents == round(-settled["money"] * 100) > 0
        credits = list(SharedAssetCredit.objects.filter(period=period))
        # … and allocated exactly: the parts sum to the settled Wh (and cents).
        assert sum(c.wh for c in credits) == period.produced_wh
        assert max(c.wh for c in credits) - min(c.wh for c in credits) <= 1
        if plant.mode == SharedAsset.Mode.REVENUE_SHARE:
            assert sum(c.amount_cents for c in credits) == period.revenue_cents

    # The billing run puts each shareholder's credits on their invoice.
    billing_run(period="2026-11", now=DEC + timedelta(days=2))
    for member in holders:
        revenue = SharedAssetCredit.objects.get(period__asset=revenue_plant, member=member)
        kwh = SharedAssetCredit.objects.get(period__asset=kwh_plant, member=member)
        lines = {
            line.kind: line
            for line in InvoiceLine.objects.filter(invoice__member=member, invoice__period=NOV)
        }
        assert lines["shared_plant_revenue"].net == Decimal(-revenue.amount_cents) / 100
        # Generation kWh: deducted from consumption at the member's tariff (0.30 per kWh).
        assert lines["shared_plant_kwh"].quantity == Decimal(kwh.wh) / 1000
        assert lines["shared_plant_kwh"].net == (Decimal("-0.30") * kwh.wh / 1000).quantize(
            Decimal("0.01")
        )

    # Idempotent: the monthly task again allocates nothing new.
    shared_assets_settle_month(month=date(2026, 11, 1), now=DEC + timedelta(days=3))
    assert SharedAssetCredit.objects.count() == 6

    # The shareholder sees their share, the plant's production and their credit per month.
    client.force_login(holders[0].user)
    page = client.get("/incentives/shared-plants/").content.decode()
    credit = SharedAssetCredit.objects.get(period__asset=revenue_plant, member=holders[0])
    assert "33.3334 %" in page
    assert f"{credit.period.produced_wh}" in page and f"{credit.amount_cents} cents" in page
