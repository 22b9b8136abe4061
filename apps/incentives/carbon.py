"""Scope 2 emissions, location-based and market-based (GHG Protocol Scope 2 Guidance, 2015) —
a pure module, no Django import.

- Location-based: every Wh consumed × the grid-average factor of its zone and period.
- Market-based: per hour, consumption covered by certificates *claimed for that same hour*
  (EnergyTag hourly matching) × the certificates' own factor; the uncovered rest × the
  residual-mix factor. Certificates beyond the hour's consumption are not counted (no
  over-claiming) and are reported as unused.

Energy in Wh (int), factors in g CO2e/kWh (Decimal), results in kg CO2e (Decimal, 3 places,
rounded once at the end).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

KG = Decimal("0.001")


@dataclass(frozen=True)
class ClaimedCertificate:
    ref: str  # certificate id
    hour_start: datetime
    wh: int
    g_per_kwh: Decimal


@dataclass(frozen=True)
class CertificateUse:
    ref: str
    hour_start: datetime
    wh_claimed: int
    wh_used: int


@dataclass
class CarbonResult:
    consumption_wh: int = 0
    covered_wh: int = 0
    location_kg: Decimal = Decimal("0.000")
    market_kg: Decimal = Decimal("0.000")
    uses: list[CertificateUse] = field(default_factory=list)

    @property
    def uncovered_wh(self) -> int:
        return self.consumption_wh - self.covered_wh


def _kg(grams_times_1000: Decimal) -> Decimal:
    # Wh × g/kWh = mg; mg / 1e6 = kg.
    return (grams_times_1000 / Decimal(1_000_000)).quantize(KG, rounding=ROUND_HALF_UP)


def scope2(
    consumption: Mapping[datetime, int],
    claimed: Sequence[ClaimedCertificate],
    location_factor: Callable[[datetime], Decimal],
    residual_factor: Callable[[datetime], Decimal],
) -> CarbonResult:
    """Scope 2 for one consumer over the hours in `consumption` (hour start → Wh)."""
    by_hour: dict[datetime, list[ClaimedCertificate]] = {}
    for cert in sorted(claimed, key=lambda c: (c.hour_start, c.g_per_kwh, c.ref)):
        by_hour.setdefault(cert.hour_start, []).append(cert)
    location_mg = Decimal(0)
    market_mg = Decimal(0)
    result = CarbonResult()
    for hour in sorted(set(consumption) | set(by_hour)):
        used_wh = consumption.get(hour, 0)
        if used_wh < 0:
            raise ValueError(f"negative consumption at {hour.isoformat()}")
        result.consumption_wh += used_wh
        location_mg += used_wh * location_factor(hour)
        left = used_wh
        for cert in by_hour.get(hour, ()):  # lowest-emission certificates first
            take = min(left, cert.wh)
            left -= take
            market_mg += take * cert.g_per_kwh
            result.covered_wh += take
            result.uses.append(CertificateUse(cert.ref, hour, cert.wh, take))
        if left:
            market_mg += left * residual_factor(hour)
    result.location_kg = _kg(location_mg)
    result.market_kg = _kg(market_mg)
    return result
