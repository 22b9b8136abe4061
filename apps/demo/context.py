"""What the demo loader hands to each app's demo step (`apps/demo/hooks/<app>.py`, docs/demo.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.accounts.models import Member, User
    from apps.demo.profiles import Community, HouseholdSpec
    from apps.grid.models import ConnectionPoint, Feeder, Substation, Transformer
    from apps.meters.models import Meter


@dataclass
class DemoContext:
    """The demo cooperative as loaded: rows from the database plus the pure specs behind them.

    Members and meters are ordered by membership number / serial. `history_start`..`now` is the
    window of interval readings in the database (`now` is the end of the last complete 15-minute
    interval, UTC). An app's `load(context)` must be idempotent: the demo command runs at every
    `make run`.
    """

    community: Community  # apps.demo.profiles.Community (specs, topology, seed)
    members: list[Member]
    specs: dict[int, HouseholdSpec]  # Member.pk -> its HouseholdSpec
    meters: list[Meter]
    meters_by_member: dict[int, list[Meter]]  # Member.pk -> its meters
    substation: Substation
    feeders: list[Feeder]
    transformers: list[Transformer]
    connection_points: dict[int, ConnectionPoint]  # Member.pk -> its connection point
    shared_pv_meter: Meter  # the village's community PV plant (its settlement account's meter)
    shared_wind_meter: Meter  # the co-owned regional wind plant (its settlement account's meter)
    # Plant meter serial -> the plant's settlement account (a Member of the cooperative itself,
    # not in `members`: it has no site, no contract and places no orders).
    plant_accounts: dict[str, Member]
    staff_user: User
    auditor_user: User
    showcase_member: Member  # member@demo.energysphere.coop: a prosumer with PV and battery
    now: datetime
    history_start: datetime
    seed: int
    created: dict[str, int] = field(default_factory=dict)  # what this run created, by kind
    extra: dict[str, Any] = field(default_factory=dict)  # apps may leave results for later apps

    def spec_for(self, member: Member) -> HouseholdSpec:
        return self.specs[member.pk]

    def members_with(self, asset: str) -> list[Member]:
        """Members whose site has `asset` ("pv", "battery", "ev", "heat_pump")."""
        return [m for m in self.members if asset in self.specs[m.pk].assets]
