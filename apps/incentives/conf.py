"""Incentives configuration, read from Django settings (set from the environment) with defaults.

INCENTIVES_ISSUING_BODY   name on every certificate ("issuing body" in EnergyTag terms)
INCENTIVES_MARKET_ZONE    bidding zone of the cooperative (emission factors are keyed by it)
INCENTIVES_COUNTRY        ISO country of the devices when the owner has none
INCENTIVES_SOURCE_EMISSION_FACTORS  g CO2e/kWh per energy source as counted in Scope 2
                          (combustion only; 0 for solar/wind/hydro — GHG Protocol Scope 2 Guidance)
INCENTIVES_ISSUE_LAG_HOURS  an hour is certified once it ended this long ago (late data settles)
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings


def issuing_body() -> str:
    return getattr(settings, "INCENTIVES_ISSUING_BODY", "EnergySphere Cooperative Registry")


def market_zone() -> str:
    return getattr(settings, "INCENTIVES_MARKET_ZONE", "DE-LU")


def default_country() -> str:
    return getattr(settings, "INCENTIVES_COUNTRY", "DE")


def source_emission_factor(source: str) -> Decimal:
    table = getattr(settings, "INCENTIVES_SOURCE_EMISSION_FACTORS", {})
    return Decimal(str(table.get(source, "0")))


def issue_lag_hours() -> int:
    return int(getattr(settings, "INCENTIVES_ISSUE_LAG_HOURS", 2))
