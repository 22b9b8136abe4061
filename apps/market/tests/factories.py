"""factory_boy factories of the market app and a small cooperative for integration tests."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import coincurve
import factory
from eth_account import Account

from apps.accounts.models import Member
from apps.accounts.tests.factories import MemberFactory, StaffUserFactory
from apps.grid.models import Transformer
from apps.grid.tests import factories as grid_factories
from apps.market.models import MarketSettings, Tariff, TradingPreference
from apps.meters.models import Meter


class TariffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tariff

    name = factory.Sequence(lambda n: f"Tariff {n}")
    valid_from = datetime(2026, 1, 1, tzinfo=UTC)
    valid_to = None
    retail_price = Decimal("0.320000")
    feed_in_price = Decimal("0.080000")
    fee_same_transformer = Decimal("0.010")
    fee_same_feeder = Decimal("0.025")
    fee_across_feeders = Decimal("0.050")
    loss_same_transformer = Decimal("0.005")
    loss_same_feeder = Decimal("0.020")
    loss_across_feeders = Decimal("0.040")
    vat_rate = Decimal("0.19")


# The topology factories are the grid app's, with the market tests' smaller capacities (so that
# capacity limits bind in the market scenarios).
class SubstationFactory(grid_factories.SubstationFactory):
    capacity_kva = 630


class FeederFactory(grid_factories.FeederFactory):
    substation = factory.SubFactory(SubstationFactory)
    capacity_kw = 200


class TransformerFactory(grid_factories.TransformerFactory):
    feeder = factory.SubFactory(FeederFactory)
    capacity_kva = 100


class ConnectionPointFactory(grid_factories.ConnectionPointFactory):
    transformer = factory.SubFactory(TransformerFactory)


class MeterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Meter

    serial = factory.Sequence(lambda n: f"MKT-{n:06d}")
    member = factory.SubFactory(MemberFactory)
    capacity_w = 30_000
    active_from = datetime(2025, 1, 1, tzinfo=UTC)


# --- a small cooperative ----------------------------------------------------------------------


@dataclass
class SmallCoop:
    members: list[Member]
    producers: list[Member]
    meters: dict[int, list[Meter]]  # member id -> meters
    keys: dict[int, bytes]  # meter id -> device private key
    tariff: Tariff
    transformers: list[Transformer]
    staff: object
    consumption_shape: dict[int, float] = field(default_factory=dict)


def build_small_coop(n_members: int = 12, *, tight_transformer_kva: int = 1) -> SmallCoop:
    """One substation, two feeders, three transformers (the third nearly full: its P2P
    capacity binds), `n_members` members round-robin over them; every third member has PV."""
    MarketSettings.objects.update_or_create(pk=1, defaults={"gate_closure_minutes": 5})
    tariff = TariffFactory()
    sub = SubstationFactory()
    f1, f2 = FeederFactory(substation=sub), FeederFactory(substation=sub)
    transformers = [
        TransformerFactory(feeder=f1, capacity_kva=50),
        TransformerFactory(feeder=f1, capacity_kva=50),
        TransformerFactory(feeder=f2, capacity_kva=tight_transformer_kva),
    ]
    members, producers, meters, keys = [], [], {}, {}
    for i in range(n_members):
        member = MemberFactory()
        ConnectionPointFactory(member=member, transformer=transformers[i % 3])
        own = []
        for kind in ("household", "pv") if i % 3 == 0 else ("household",):
            account = Account.create()
            public_key = coincurve.PrivateKey(bytes(account.key)).public_key
            meter = MeterFactory(
                member=member,
                asset_kind=kind,
                direction="export" if kind == "pv" else "import",
                address=account.address,
                public_key=public_key.format(compressed=False).hex(),
            )
            keys[meter.pk] = bytes(account.key)
            own.append(meter)
        meters[member.pk] = own
        members.append(member)
        if i % 3 == 0:
            producers.append(member)
    return SmallCoop(members, producers, meters, keys, tariff, transformers, StaffUserFactory())


def profile_wh(member_index: int, kind: str, k: int, day_factor: float = 1.0) -> int:
    """Deterministic 15-minute energy: household load with an evening peak, PV a daytime arc."""
    if kind == "pv":
        if not 24 <= k < 72:  # 06:00–18:00 UTC
            return 0
        return int(900 * day_factor * math.sin(math.pi * (k - 24) / 48) * (1 + member_index % 2))
    evening = 1.0 if 68 <= k < 88 else 0.0
    return int((60 + 25 * (member_index % 4) + 140 * evening) * day_factor)


def set_preferences(coop: SmallCoop) -> None:
    for i, member in enumerate(coop.members):
        pref = TradingPreference.objects.create(
            member=member,
            max_buy_price=Decimal("0.24") + Decimal(i % 4) / 100,
            min_sell_price=Decimal("0.09") + Decimal(i % 3) / 100,
            green_only=(i == 4),
        )
        if i == 5:
            pref.preferred_partners.set([coop.producers[-1]])


def day_start(year: int = 2026, month: int = 6, day: int = 10) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def intervals(start: datetime) -> list[datetime]:
    return [start + timedelta(minutes=15 * k) for k in range(96)]


def make_trade(member: Member, *, settled: bool = False):
    """A trade in which `member` buys from another member (ORM rows, no clearing run)."""
    from apps.market.models import ClearingResult, Order, SettlementRun, Trade
    from apps.market.services.settlement import trades_tree

    tariff = Tariff.objects.first() or TariffFactory()
    seller = MemberFactory()
    start = datetime(2026, 5, 1, 10, 0, tzinfo=UTC) + timedelta(days=Trade.objects.count())
    run = SettlementRun.objects.create(period_start=start, period_end=start + timedelta(days=1))
    clearing = ClearingResult.objects.create(
        run=run, interval_start=start, mechanism="pay_as_clear", tariff=tariff, price="0.2"
    )
    bid = Order.objects.create(
        member=member, interval_start=start, side="bid", wh=500, limit_price="0.3", status="matched"
    )
    offer = Order.objects.create(
        member=seller,
        interval_start=start,
        side="offer",
        wh=500,
        limit_price="0.1",
        status="matched",
    )
    trade = Trade.objects.create(
        clearing=clearing,
        interval_start=start,
        seller=seller,
        buyer=member,
        seller_order=offer,
        buyer_order=bid,
        distance=0,
        wh_from_seller=500,
        wh_delivered=498,
        loss_wh=2,
        price=Decimal("0.2"),
        fee_per_kwh=Decimal("0.01"),
    )
    if settled:
        run.trades_root = "0x" + trades_tree(run=run).root.hex()
        run.transition_to(
            SettlementRun.Status.SETTLED,
            actor=None,
            via=(SettlementRun.Status.CLEARED, SettlementRun.Status.METERED),
            update_fields=["trades_root"],
        )
    return trade


def make_issued_statement(member: Member):
    from apps.market.models import Statement

    return Statement.objects.create(
        member=member,
        month=datetime(2026, 5, 1, tzinfo=UTC).date(),
        period_start=datetime(2026, 4, 30, 22, tzinfo=UTC),
        period_end=datetime(2026, 5, 31, 22, tzinfo=UTC),
        status=Statement.Status.ISSUED,
        number=f"202605-{member.membership_number}",
        vat_rate=Decimal("0.19"),
        totals={"total": "12.34", "savings": "1.00"},
    )
