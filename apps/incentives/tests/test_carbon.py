"""Scope 2: location- vs market-based, hourly matching, factors per zone and period."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from apps.core.exceptions import ApplicationError
from apps.incentives.carbon import ClaimedCertificate, scope2
from apps.incentives.models import EmissionFactor
from apps.incentives.selectors import carbon_by_member
from apps.incentives.services import certificates_claim_for_consumption, certificates_issue_for_hour

from .factories import MeterFactory, PVMeterFactory, emission_factors, readings

T0 = datetime(2026, 6, 4, 11, tzinfo=UTC)
H = timedelta(hours=1)


def test_pure_scope2_matches_per_hour_and_uses_residual_mix_for_the_rest():
    consumption = {T0: 1000, T0 + H: 1000}
    claimed = [
        ClaimedCertificate("a", T0, 600, Decimal(0)),
        ClaimedCertificate("b", T0 + 2 * H, 5000, Decimal(0)),  # other hour: does not count
    ]
    result = scope2(consumption, claimed, lambda h: Decimal(400), lambda h: Decimal(500))
    assert result.location_kg == Decimal("0.800")  # 2 kWh × 400 g
    assert result.market_kg == Decimal("0.700")  # 0.4 kWh × 500 g + 1 kWh × 500 g
    assert result.covered_wh == 600
    assert [(u.ref, u.wh_used) for u in result.uses] == [("a", 600), ("b", 0)]


@pytest.mark.django_db
def test_market_based_is_below_location_based_when_certificates_cover_consumption():
    emission_factors(location="380", residual="520")
    pv = PVMeterFactory()
    member = pv.member
    house = MeterFactory(member=member, asset_kind="household", direction="import")
    readings(pv, T0, [300] * 8)
    readings(house, T0, [250] * 8, export=False)
    for h in (T0, T0 + H):
        certificates_issue_for_hour(meter=pv, hour_start=h)
    month = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
    (before,) = carbon_by_member(start=month[0], end=month[1], member_ids=[member.pk])
    # Nothing claimed yet: market-based is all residual mix (above location-based here).
    assert before.result.market_kg > before.result.location_kg

    claimed = certificates_claim_for_consumption(
        member=member, start=month[0], end=month[1], beneficiary=member.legal_name
    )
    assert sum(c.wh for c in claimed) == 2000  # exactly the consumption, hour by hour
    (after,) = carbon_by_member(start=month[0], end=month[1], member_ids=[member.pk])
    assert after.result.covered_wh == after.result.consumption_wh == 2000
    assert after.result.market_kg < after.result.location_kg
    assert after.result.location_kg == Decimal("0.760")  # 2 kWh × 380 g
    assert after.result.market_kg == Decimal("0.000")  # solar certificates: 0 g/kWh


@pytest.mark.django_db
def test_factors_are_chosen_per_period_and_a_missing_factor_is_a_clear_error():
    member_meter = MeterFactory(asset_kind="household", direction="import")
    readings(member_meter, T0, [1000] * 4, export=False)
    start, end = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
    with pytest.raises(ApplicationError, match="No location-based|No location emission"):
        carbon_by_member(start=start, end=end)
    emission_factors(location="400", residual="500")
    EmissionFactor.objects.create(
        market_zone="DE-LU", basis="location", valid_from=date(2026, 6, 1),
        g_co2e_per_kwh=Decimal("300"),
    )  # fmt: skip
    (row,) = carbon_by_member(start=start, end=end)
    assert row.result.location_kg == Decimal("1.200")  # the June factor (300), not 400
