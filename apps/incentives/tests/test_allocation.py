"""Property tests of the pure shared-asset allocation (no database)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.incentives.allocation import (
    PPM,
    ShareTableError,
    allocate,
    percent_to_ppm,
    validate_share_table,
)


@st.composite
def share_tables(draw):
    n = draw(st.integers(min_value=1, max_value=12))
    cuts = sorted(
        draw(st.lists(st.integers(1, PPM - 1), min_size=n - 1, max_size=n - 1, unique=True))
    )
    bounds = [0, *cuts, PPM]
    return {f"m{i}": bounds[i + 1] - bounds[i] for i in range(n)}


@settings(max_examples=300, deadline=None)
@given(weights=share_tables(), totals=st.lists(st.integers(0, 50_000), min_size=1, max_size=40))
def test_every_period_is_handed_out_exactly_and_fairly(weights, totals):
    carry: dict = {}
    cumulative = dict.fromkeys(weights, 0)
    for total in totals:
        result = allocate(total, weights, carry)
        # Nothing lost or created, nobody gets a negative amount.
        assert sum(result.amounts.values()) == total
        assert all(v >= 0 for v in result.amounts.values())
        # The carried remainders always net to zero.
        assert sum(result.carry.values()) == 0
        carry = result.carry
        for key, amount in result.amounts.items():
            cumulative[key] += amount
    grand = sum(totals)
    for key, weight in weights.items():
        exact = Fraction(grand * weight, PPM)
        # Carrying remainders keeps everyone within two Wh of their exact entitlement.
        assert abs(cumulative[key] - exact) < 2


def test_remainders_are_carried_forward_not_dropped():
    thirds = {"a": 333_334, "b": 333_333, "c": 333_333}
    got = dict.fromkeys(thirds, 0)
    carry: dict = {}
    for _ in range(3):
        result = allocate(1, thirds, carry)
        carry = result.carry
        for key, amount in result.amounts.items():
            got[key] += amount
    # Three single Wh over three periods: each third-owner gets exactly one.
    assert got == {"a": 1, "b": 1, "c": 1}


def test_share_table_must_sum_to_100_percent():
    with pytest.raises(ShareTableError, match=r"99\.5%.*exactly 100%"):
        validate_share_table({"a": 500_000, "b": 495_000})
    with pytest.raises(ShareTableError, match="empty"):
        validate_share_table({})
    assert percent_to_ppm(Decimal("12.3456")) == 123_456
    with pytest.raises(ShareTableError, match="four decimals"):
        percent_to_ppm(Decimal("1.00001"))
