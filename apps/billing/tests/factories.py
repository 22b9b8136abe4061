"""factory_boy factories of billing and a helper that books settled energy for a member."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import factory

from apps.accounts.tests.factories import MemberFactory
from apps.billing.models import SupplyContract, SupplyTariff, SupplyTariffVersion
from apps.market.models import SettlementLine, SettlementRun


class SupplyTariffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SupplyTariff

    code = factory.Sequence(lambda n: f"home-{n}")
    name = factory.Sequence(lambda n: f"Home {n}")


class SupplyTariffVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SupplyTariffVersion

    tariff = factory.SubFactory(SupplyTariffFactory)
    valid_from = date(2026, 1, 1)
    energy_price = Decimal("0.300000")
    feed_in_price = Decimal("0.080000")
    network_charge = Decimal("0.090000")
    levy = Decimal("0.020000")
    standing_charge = Decimal("9.30")
    vat_rate = Decimal("0.19")
    reward_credit = Decimal("0")


class SupplyContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SupplyContract

    reference = factory.Sequence(lambda n: f"SC-{n:05d}")
    member = factory.SubFactory(MemberFactory)
    tariff = factory.SubFactory(SupplyTariffFactory)
    start = date(2026, 1, 1)


def settled(
    member,
    at: datetime,
    *,
    is_adjustment: bool = False,
    grid_import_wh: int = 0,
    grid_export_wh: int = 0,
    bought_wh: int = 0,
    sold_wh: int = 0,
    p2p_purchase: str = "0",
    p2p_sale: str = "0",
    network_fee: str = "0",
    reason: str = "",
) -> SettlementLine:
    """One settlement line of `member` at `at` (its settlement run is created when missing)."""
    day = datetime(at.year, at.month, at.day, tzinfo=UTC)
    run, _ = SettlementRun.objects.get_or_create(
        period_start=day,
        defaults={"period_end": day.replace(hour=23, minute=59), "status": "settled"},
    )
    return SettlementLine.objects.create(
        run=run,
        member=member,
        interval_start=at,
        is_adjustment=is_adjustment,
        reason=reason,
        import_wh=grid_import_wh + bought_wh,
        export_wh=grid_export_wh + sold_wh,
        grid_import_wh=grid_import_wh,
        grid_export_wh=grid_export_wh,
        bought_wh=bought_wh,
        sold_wh=sold_wh,
        p2p_purchase=Decimal(p2p_purchase),
        p2p_sale=Decimal(p2p_sale),
        network_fee=Decimal(network_fee),
    )
