"""Demo data of the incentives app (called by `python manage.py demo_cooperative`, docs/demo.md).

Idempotent: emission factors and reward rules by natural key; the shared plants (the village's
community PV and the co-owned regional wind plant, each metered on its settlement account) and
their share tables are set once; certificates are issued for the last days of history (issuance
skips what exists) and claimed by every member's standing instruction against their own
consumption, as the hourly beat task does in production.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction

from apps.incentives import conf
from apps.incentives.models import EmissionFactor, RewardRule, SharedAsset

# Illustrative factors for the German bidding zone (g CO2e/kWh). Location-based: the Federal
# Environment Agency's (UBA) CO2 emission factor of the German electricity mix, 2023: 380 g/kWh.
# Residual mix: replace with the AIB European Residual Mix figure for the reporting year.
DEMO_FACTORS = (
    (EmissionFactor.Basis.LOCATION, Decimal("380"), "UBA German electricity mix 2023"),
    (EmissionFactor.Basis.RESIDUAL_MIX, Decimal("560"), "illustrative residual mix (demo)"),
)
DEMO_RULES = (
    (RewardRule.Kind.LOCAL_RENEWABLE, 10, "10 tokens per kWh bought from members"),
    (RewardRule.Kind.DR_PERFORMANCE, 50, "50 tokens per kWh of demand-response performance"),
)
SHAREHOLDERS = 24
WIND_PLANT = "Windanteil MV1.101 (500 kW of a 2 MW turbine)"
# Two households in three hold a few shares of the wind plant (Generation kWh style, docs/demo.md).
WIND_HOLDER_EVERY = 3
CERTIFIED_DAYS = 3  # the beat task's 48 hours and a margin; a day costs ~20 s to certify


def _share_table(members) -> dict:
    """Uneven, exact shares in percent with four decimals summing to 100."""
    weights = [1 + (i * 7) % 5 for i in range(len(members))]
    total = sum(weights)
    shares = {
        m: (Decimal(w) * 100 / total).quantize(Decimal("0.0001"))
        for m, w in zip(members, weights, strict=True)
    }
    first = members[0]
    shares[first] += Decimal(100) - sum(shares.values())
    return shares


def pv_holder_numbers(community) -> list[int]:
    """Demo numbers of the community PV plant's shareholders: the showcase member and the first
    23 other sites."""
    others = [h.number for h in community.households if h.number != community.showcase_number]
    return [community.showcase_number, *others[: SHAREHOLDERS - 1]]


def wind_holder_numbers(community) -> list[int]:
    """Demo numbers of the wind plant's shareholders: two households in three, and the showcase
    member."""
    return [
        h.number
        for h in community.households
        if h.number == community.showcase_number
        or (h.kind == "household" and h.number % WIND_HOLDER_EVERY != 0)
    ]


def _setup(context) -> None:
    """Emission factors, reward rules and the shared plants' shareholders (one transaction)."""
    from apps.incentives.services import shared_asset_shares_set

    created = context.created
    zone = conf.market_zone()
    for basis, value, source in DEMO_FACTORS:
        _, made = EmissionFactor.objects.get_or_create(
            market_zone=zone,
            basis=basis,
            valid_from=date(2024, 1, 1),
            defaults={"g_co2e_per_kwh": value, "source": source},
        )
        created["emission factors"] = created.get("emission factors", 0) + int(made)
    for kind, rate, description in DEMO_RULES:
        if not RewardRule.objects.filter(kind=kind).exists():
            RewardRule.objects.create(
                kind=kind,
                tokens_per_kwh=rate,
                valid_from=context.history_start,
                description=description,
            )
            created["reward rules"] = created.get("reward rules", 0) + 1

    asset, made = SharedAsset.objects.get_or_create(
        meter=context.shared_pv_meter,
        defaults={"name": "Lindenhagen community PV (60 kWp)", "support_received": "none"},
    )
    by_number = {context.spec_for(m).number: m for m in context.members}
    if made or not asset.shares.exists():
        owners = [by_number[n] for n in pv_holder_numbers(context.community)]
        shared_asset_shares_set(asset=asset, shares=_share_table(owners), actor=context.staff_user)
        created["shared asset shareholders"] = len(owners)

    # The wind plant sells without EEG support (direct marketing): only then may its output carry
    # guarantees of origin in Germany. Its kWh are credited to the shareholders (Generation kWh).
    wind, made = SharedAsset.objects.get_or_create(
        meter=context.shared_wind_meter,
        defaults={
            "name": WIND_PLANT,
            "support_received": "none",
            "mode": SharedAsset.Mode.GENERATION_KWH,
        },
    )
    if made or not wind.shares.exists():
        holders = [by_number[n] for n in wind_holder_numbers(context.community)]
        shared_asset_shares_set(asset=wind, shares=_share_table(holders), actor=context.staff_user)
        created["wind plant shareholders"] = len(holders)


def load(context) -> None:
    """Not one transaction (the loader runs this step as it is): the set-up commits at once,
    then certificates are issued and claimed in the services' own small transactions, so the
    producing meters' row locks are held for a device-hour at a time, not for the whole step.
    Idempotent: a re-run issues and claims only what is missing."""
    from apps.incentives.services import certificates_auto_claim, certificates_issue

    with transaction.atomic():
        _setup(context)
    created = context.created
    start = max(context.now - timedelta(days=CERTIFIED_DAYS), context.history_start)
    summary = certificates_issue(
        start=start, end=context.now, actor=context.staff_user, now=context.now
    )
    created["certificates"] = created.get("certificates", 0) + summary.certificates
    claimed = certificates_auto_claim(start=start, end=context.now)
    created["certificates claimed"] = created.get("certificates claimed", 0) + claimed.certificates
