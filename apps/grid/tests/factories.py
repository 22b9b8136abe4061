"""factory_boy factories for the grid app."""

from __future__ import annotations

import factory

from apps.accounts.tests.factories import MemberFactory
from apps.grid.models import ConnectionPoint, Feeder, FlexibleDevice, Substation, Transformer


class SubstationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Substation

    name = factory.Sequence(lambda n: f"Substation {n}")
    capacity_kva = 10_000
    latitude = 53.65
    longitude = 11.41


class FeederFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feeder

    substation = factory.SubFactory(SubstationFactory)
    name = factory.Sequence(lambda n: f"Feeder {n}")
    capacity_kw = 2_000


class TransformerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Transformer

    feeder = factory.SubFactory(FeederFactory)
    name = factory.Sequence(lambda n: f"Transformer {n}")
    capacity_kva = 250
    vk_percent = 6.0
    vkr_percent = 1.32
    power_factor = 1.0


class ConnectionPointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConnectionPoint

    member = factory.SubFactory(MemberFactory)
    transformer = factory.SubFactory(TransformerFactory)
    code = factory.Sequence(lambda n: f"DE-CP-{n:06d}")
    bus_name = factory.Sequence(lambda n: f"Bus {n}")


class BatteryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FlexibleDevice

    serial = factory.Sequence(lambda n: f"BAT-{n:05d}")
    kind = FlexibleDevice.Kind.BATTERY
    connection_point = factory.SubFactory(ConnectionPointFactory)
    max_charge_w = 5_000
    max_discharge_w = 5_000
    capacity_wh = 10_000
    soc_wh = 5_000
    min_soc_wh = 1_000


class EVChargerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FlexibleDevice

    serial = factory.Sequence(lambda n: f"EV-{n:05d}")
    kind = FlexibleDevice.Kind.EV
    connection_point = factory.SubFactory(ConnectionPointFactory)
    max_charge_w = 11_000
    daily_energy_wh = 20_000
    available_from_hour = 17
    deadline_hour = 24
