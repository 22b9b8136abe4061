"""factory_boy factories and helpers for incentives tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import factory

from apps.accounts.models import Role
from apps.accounts.tests.factories import MemberFactory as _MemberFactory
from apps.accounts.tests.factories import UserFactory
from apps.incentives.models import EmissionFactor, RewardRule, SharedAsset
from apps.meters.models import Meter
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory

Q = timedelta(minutes=15)


class MemberFactory(_MemberFactory):
    # accounts' MemberUserFactory sets `roles` as a plain attribute; pass it to the hook instead.
    user = factory.SubFactory(UserFactory, roles=(Role.MEMBER,))


class PVMeterFactory(MeterFactory):
    member = factory.SubFactory(MemberFactory)

    asset_kind = Meter.AssetKind.PV
    direction = Meter.Direction.EXPORT


class SharedAssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SharedAsset

    name = factory.Sequence(lambda n: f"Community PV {n}")
    meter = factory.SubFactory(PVMeterFactory, member=None, asset_kind=Meter.AssetKind.SHARED_PV)


class RewardRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RewardRule

    kind = RewardRule.Kind.LOCAL_RENEWABLE
    tokens_per_kwh = 10
    valid_from = datetime(2020, 1, 1, tzinfo=UTC)


def emission_factors(zone: str = "DE-LU", location: str = "380", residual: str = "520") -> None:
    for basis, value in (
        (EmissionFactor.Basis.LOCATION, location),
        (EmissionFactor.Basis.RESIDUAL_MIX, residual),
    ):
        EmissionFactor.objects.get_or_create(
            market_zone=zone,
            basis=basis,
            valid_from=date(2020, 1, 1),
            defaults={"g_co2e_per_kwh": Decimal(value), "source": "test"},
        )


def readings(meter, start: datetime, values: list[int], *, export: bool = True) -> int:
    """Store validated 15-minute readings (export or import Wh) from `start` on."""
    rows = [
        BackfillRow(
            meter_id=meter.pk,
            interval_start=start + i * Q,
            import_wh=0 if export else wh,
            export_wh=wh if export else 0,
        )
        for i, wh in enumerate(values)
    ]
    return readings_backfill(rows=rows)


__all__ = [
    "MemberFactory",
    "MeterFactory",
    "PVMeterFactory",
    "RewardRuleFactory",
    "SharedAssetFactory",
    "emission_factors",
    "readings",
]


def settled_run(trades: list[tuple], *, status: str = "settled"):
    """A market settlement run in `status` with one trade per (seller, buyer, interval, wh)."""
    from apps.market.models import ClearingResult, Order, SettlementRun, Trade
    from apps.market.tests.factories import TariffFactory

    tariff = TariffFactory()
    first = min(t[2] for t in trades)
    run = SettlementRun.objects.create(
        period_start=first, period_end=first + timedelta(hours=1), status=status
    )
    clearings: dict = {}
    made = []
    for seller, buyer, interval_start, wh in trades:
        clearing = clearings.get(interval_start)
        if clearing is None:
            clearing = clearings[interval_start] = ClearingResult.objects.create(
                run=run, interval_start=interval_start, mechanism="pay_as_clear", tariff=tariff
            )
        orders = [
            Order.objects.create(
                member=m, interval_start=interval_start, side=side, wh=wh,
                limit_price=Decimal("0.2"), status="matched", matched_wh=wh,
            )
            for m, side in ((seller, "offer"), (buyer, "bid"))
        ]  # fmt: skip
        made.append(
            Trade.objects.create(
                clearing=clearing, interval_start=interval_start, seller=seller, buyer=buyer,
                seller_order=orders[0], buyer_order=orders[1], distance=0, wh_from_seller=wh,
                wh_delivered=wh, loss_wh=0, price=Decimal("0.15"), fee_per_kwh=Decimal("0.01"),
            )
        )  # fmt: skip
    return run, made
