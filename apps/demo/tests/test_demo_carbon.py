"""Acceptance 8 (issue 19) on the demo: over the demo's month (its December so far, the period
its carbon report shows), hourly auto-claiming claims every certificate's Wh at most once and never
more than a member used in that hour, and the cooperative's market-based Scope 2 is below its
location-based figure.

Demo-shaped and faithful, but small: every tenth demo site (numbers ending in 2: twelve sites,
ten of them consumers — fewer roofs than the village's, so no easier) with its real profiles
(households, a business, their PV, batteries, EVs, heat pumps), the village's community PV plant
and the co-owned wind plant (SimBench wind profile) on their settlement accounts, each shared with
the sample's members who hold shares in the demo — at the demo's share weights, the plants scaled
to the sample's part of the shares, so every shareholder's hourly entitlement is what it is in
the demo — and the demo's emission factors. P2P trades are left out (they only move certificates
between members who would claim them against the same hours)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from apps.compliance.reports.builders import build_carbon
from apps.demo.hooks import incentives as demo_incentives
from apps.demo.profiles import community, meter_energy_wh, meter_serial
from apps.incentives import conf
from apps.incentives.models import Certificate, EmissionFactor, SharedAsset
from apps.incentives.services import (
    certificates_auto_claim,
    certificates_issue,
    shared_asset_shares_set,
)
from apps.incentives.tests.factories import MemberFactory
from apps.meters.models import Meter
from apps.meters.selectors import member_hourly_import
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

# The demo's December so far with `demo_cooperative --now 2026-12-03T06:00Z`.
START = datetime(2026, 12, 1, tzinfo=UTC)
END = datetime(2026, 12, 3, 6, tzinfo=UTC)
SAMPLE_EVERY, SAMPLE_OFFSET = 10, 2
_KIND = {
    "load": Meter.AssetKind.HOUSEHOLD,
    "pv": Meter.AssetKind.PV,
    "battery": Meter.AssetKind.BATTERY,
    "ev": Meter.AssetKind.EV,
    "heat_pump": Meter.AssetKind.HEAT_PUMP,
}


def _store(meter, spec, kind, scale: Decimal = Decimal(1)) -> list[BackfillRow]:
    imports, exports = meter_energy_wh(spec, kind, START, END)
    if scale != 1:
        exports = [round(Decimal(int(wh)) * scale) for wh in exports]
    return [
        BackfillRow(
            meter_id=meter.pk,
            interval_start=START + i * timedelta(minutes=15),
            import_wh=int(imp),
            export_wh=int(exp),
        )
        for i, (imp, exp) in enumerate(zip(imports, exports, strict=True))
    ]


def _plant(c, spec, kind, asset_kind, holders, members, rows, name, mode) -> SharedAsset:
    """A shared plant on its settlement account, shared by the sample's holders at their demo
    share weights; its output scaled to the sample's part of the shares."""
    demo_shares = demo_incentives._share_table(holders)
    ours = {n: demo_shares[n] for n in holders if n in members}
    part = sum(ours.values()) / 100
    account = MemberFactory()
    meter = MeterFactory(
        member=account,
        serial=meter_serial(spec, kind),
        asset_kind=asset_kind,
        direction=Meter.Direction.EXPORT,
        capacity_w=spec.capacity_w(kind),
        key=False,
    )
    rows += _store(meter, spec, kind, part)
    plant = SharedAsset.objects.create(name=name, meter=meter, mode=mode)
    percent = {members[n]: (v / part).quantize(Decimal("0.0001")) for n, v in ours.items()}
    first = next(iter(percent))
    percent[first] += Decimal(100) - sum(percent.values())
    shared_asset_shares_set(asset=plant, shares=percent)
    return plant


def test_over_the_demo_month_auto_claim_puts_market_based_below_location_based():
    c = community()
    zone = conf.market_zone()
    for basis, value, source in demo_incentives.DEMO_FACTORS:
        EmissionFactor.objects.create(
            market_zone=zone,
            basis=basis,
            valid_from=datetime(2024, 1, 1, tzinfo=UTC).date(),
            g_co2e_per_kwh=value,
            source=source,
        )
    sample = [h for h in c.households if h.number % SAMPLE_EVERY == SAMPLE_OFFSET]
    # Faithful: consumers, prosumers and producers, households and a business.
    assert {h.member_kind for h in sample} == {"consumer", "prosumer", "producer"}
    assert {h.kind for h in sample} == {"household", "business"}
    members, rows = {}, []
    for spec in sample:
        members[spec.number] = member = MemberFactory(kind=spec.member_kind)
        for kind in spec.assets:
            meter = MeterFactory(
                member=member,
                serial=meter_serial(spec, kind),
                asset_kind=_KIND[kind],
                direction="import" if kind in ("load", "ev", "heat_pump") else "export",
                capacity_w=spec.capacity_w(kind),
                key=False,
            )
            if kind == "battery":
                meter.direction = Meter.Direction.BIDIRECTIONAL
                meter.save(update_fields=["direction"])
            rows += _store(meter, spec, kind)
    pv_plant = _plant(
        c, c.shared_pv, "pv", Meter.AssetKind.SHARED_PV,
        demo_incentives.pv_holder_numbers(c), members, rows,
        "Community PV", SharedAsset.Mode.REVENUE_SHARE,
    )  # fmt: skip
    wind_plant = _plant(
        c, c.shared_wind, "wind", Meter.AssetKind.SHARED_WIND,
        demo_incentives.wind_holder_numbers(c), members, rows,
        demo_incentives.WIND_PLANT, SharedAsset.Mode.GENERATION_KWH,
    )  # fmt: skip
    assert pv_plant.shares.count() >= 2 and wind_plant.shares.count() >= 5
    readings_backfill(rows=rows)

    certificates_issue(start=START, end=END, now=END + timedelta(hours=3))
    issued = dict(
        Certificate.objects.filter(parent__isnull=True)
        .values_list("token_id")
        .annotate(wh=Sum("range_end") - Sum("range_start"))
    )
    wind_issued = Certificate.objects.filter(
        parent__isnull=True, device=wind_plant.meter, energy_source="wind"
    ).aggregate(wh=Sum("range_end") - Sum("range_start"))["wh"]
    assert wind_issued > 0
    summary = certificates_auto_claim(start=START, end=END)
    assert summary.wh > 0

    claimed = Certificate.objects.filter(status=Certificate.Status.CLAIMED)
    # Every certificate's Wh at most once: per token the claimed serial ranges never overlap and
    # never exceed what was issued.
    ranges = defaultdict(list)
    for token, r0, r1 in claimed.values_list("token_id", "range_start", "range_end"):
        ranges[token].append((r0, r1))
    for token, spans in ranges.items():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), token
        assert sum(r1 - r0 for r0, r1 in spans) <= issued[token]
    # Claimed per member and hour never exceeds the member's consumption in that hour.
    consumption = member_hourly_import(start=START, end=END)
    per_hour = defaultdict(int)
    for owner, hour, r0, r1 in claimed.values_list(
        "owner_id", "production_start", "range_start", "range_end"
    ):
        per_hour[(owner, hour)] += r1 - r0
    assert all(
        wh <= consumption.get(owner, {}).get(hour, 0) for (owner, hour), wh in per_hour.items()
    )
    # The wind plant's certificates are claimed by its shareholders in their production hour.
    assert claimed.filter(energy_source="wind").exists()
    assert set(claimed.filter(energy_source="wind").values_list("owner", flat=True)) <= set(
        wind_plant.shares.values_list("member", flat=True)
    )

    # The auditor's carbon report for the period: market-based below location-based.
    report = build_carbon(start=START, end=END)
    totals = dict(report.totals)
    assert totals["Covered by claimed certificates (Wh)"] == summary.wh
    assert totals["Market-based (kg CO2e)"] < totals["Location-based (kg CO2e)"]
