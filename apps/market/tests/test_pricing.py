"""SDR and MMR against the formulas of docs/domain.md; budget balance for every mechanism."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.market import pricing as p

RETAIL, FEED_IN = Decimal("0.32"), Decimal("0.08")


def test_sdr_formula_values():
    # SDR = 0.5: Ps = 0.08·0.32/(0.24·0.5 + 0.08) = 0.128, Pb = 0.128·0.5 + 0.32·0.5 = 0.224.
    prices = p.sdr_prices(supply_wh=500, demand_wh=1000, retail=RETAIL, feed_in=FEED_IN)
    assert prices.seller_price == Decimal("0.128")
    assert prices.buyer_price == Decimal("0.224")
    # No surplus: sellers would get the retail price and buyers pay it.
    zero = p.sdr_prices(supply_wh=0, demand_wh=1000, retail=RETAIL, feed_in=FEED_IN)
    assert zero == p.CommunityPrices(RETAIL, RETAIL)
    # SDR > 1: everyone at the feed-in price.
    over = p.sdr_prices(supply_wh=1500, demand_wh=1000, retail=RETAIL, feed_in=FEED_IN)
    assert over == p.CommunityPrices(FEED_IN, FEED_IN)


def test_mmr_formula_values():
    # Pm = 0.20. Shortage 400/1000: buyers pay (0.2·400 + 0.32·600)/1000 = 0.272.
    short = p.mmr_prices(supply_wh=400, demand_wh=1000, retail=RETAIL, feed_in=FEED_IN)
    assert short == p.CommunityPrices(Decimal("0.20"), Decimal("0.272"))
    # Surplus 1000/400: sellers get (0.2·400 + 0.08·600)/1000 = 0.128.
    surplus = p.mmr_prices(supply_wh=1000, demand_wh=400, retail=RETAIL, feed_in=FEED_IN)
    assert surplus == p.CommunityPrices(Decimal("0.128"), Decimal("0.20"))
    even = p.mmr_prices(supply_wh=700, demand_wh=700, retail=RETAIL, feed_in=FEED_IN)
    assert even == p.CommunityPrices(Decimal("0.20"), Decimal("0.20"))


prices_st = st.tuples(
    st.integers(min_value=1, max_value=500), st.integers(min_value=1, max_value=500)
).filter(lambda t: t[0] != t[1])


@given(
    supply=st.integers(min_value=0, max_value=10**7),
    demand=st.integers(min_value=0, max_value=10**7),
    cents=prices_st,
    mechanism=st.sampled_from([p.SDR, p.MMR]),
)
def test_budget_balance_and_bounds(supply, demand, cents, mechanism):
    feed_in, retail = (Decimal(min(cents)) / 100, Decimal(max(cents)) / 100)
    prices = p.community_prices(
        mechanism, supply_wh=supply, demand_wh=demand, retail=retail, feed_in=feed_in
    )
    # Nobody is worse off than trading with the grid alone.
    assert feed_in <= prices.seller_price <= retail
    assert feed_in <= prices.buyer_price <= retail
    balance = p.community_balance(
        prices, supply_wh=supply, demand_wh=demand, retail=retail, feed_in=feed_in
    )
    assert abs(balance.imbalance) < Decimal("1e-20")


@given(
    supply=st.integers(min_value=1, max_value=10**6),
    demand=st.integers(min_value=1, max_value=10**6),
)
def test_sdr_matches_formula_by_hand(supply, demand):
    prices = p.sdr_prices(supply_wh=supply, demand_wh=demand, retail=RETAIL, feed_in=FEED_IN)
    sdr = Decimal(supply) / Decimal(demand)
    if sdr <= 1:
        ps = FEED_IN * RETAIL / ((RETAIL - FEED_IN) * sdr + FEED_IN)
        assert prices.seller_price == pytest.approx(ps, abs=Decimal("1e-20"))
        assert prices.buyer_price == pytest.approx(
            ps * sdr + RETAIL * (1 - sdr), abs=Decimal("1e-20")
        )
    else:
        assert prices == p.CommunityPrices(FEED_IN, FEED_IN)


def test_invalid_tariff_is_rejected():
    with pytest.raises(ValueError, match="above the feed-in"):
        p.sdr_prices(supply_wh=1, demand_wh=1, retail=FEED_IN, feed_in=RETAIL)
