"""Community pricing rules that need no bids (pure; no Django import).

λb = retail price (the community buys from the grid), λs = feed-in price (it sells to the grid),
λb > λs; TSP = total surplus offered, TBP = total demand, SDR = TSP / TBP.

* Supply-demand ratio (Liu et al., "Energy sharing model with price-based demand response for
  microgrids of peer-to-peer prosumers", IEEE Trans. Power Systems 32(5), 2017):
  for 0 ≤ SDR ≤ 1, Ps = λs·λb / ((λb − λs)·SDR + λs) and Pb = Ps·SDR + λb·(1 − SDR);
  for SDR > 1, Ps = Pb = λs.
* Mid-market rate (Long et al., "Peer-to-peer energy trading in a community microgrid", IEEE PES
  GM 2017): Pm = (λb + λs)/2; if TSP < TBP sellers get Pm and buyers pay
  (Pm·TSP + λb·(TBP − TSP))/TBP; if TSP > TBP buyers pay Pm and sellers get
  (Pm·TBP + λs·(TSP − TBP))/TSP; if TSP = TBP both pay/get Pm.

Invariant (tested): buyers' payments + grid export revenue = sellers' receipts + grid import cost.
Prices are Decimals; `quantize` rounds once at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

SDR, MMR, PAY_AS_CLEAR = "sdr", "mmr", "pay_as_clear"
MECHANISMS = (PAY_AS_CLEAR, SDR, MMR)


@dataclass(frozen=True, slots=True)
class CommunityPrices:
    seller_price: Decimal  # per kWh received by sellers for their surplus
    buyer_price: Decimal  # per kWh paid by buyers for their demand

    def quantize(self, places: int = 6) -> CommunityPrices:
        q = Decimal(1).scaleb(-places)
        return CommunityPrices(
            self.seller_price.quantize(q, rounding=ROUND_HALF_EVEN),
            self.buyer_price.quantize(q, rounding=ROUND_HALF_EVEN),
        )


def _check(retail: Decimal, feed_in: Decimal, supply_wh: int, demand_wh: int) -> None:
    if retail <= feed_in:
        raise ValueError("retail price must be above the feed-in price")
    if feed_in <= 0:
        raise ValueError("feed-in price must be positive")
    if supply_wh < 0 or demand_wh < 0:
        raise ValueError("supply and demand must not be negative")


def sdr_prices(
    *, supply_wh: int, demand_wh: int, retail: Decimal, feed_in: Decimal
) -> CommunityPrices:
    _check(retail, feed_in, supply_wh, demand_wh)
    with localcontext() as ctx:
        ctx.prec = 34
        if demand_wh == 0 or supply_wh > demand_wh:
            return CommunityPrices(feed_in, feed_in)
        ratio = Decimal(supply_wh) / Decimal(demand_wh)
        ps = feed_in * retail / ((retail - feed_in) * ratio + feed_in)
        pb = ps * ratio + retail * (1 - ratio)
        return CommunityPrices(+ps, +pb)


def mmr_prices(
    *, supply_wh: int, demand_wh: int, retail: Decimal, feed_in: Decimal
) -> CommunityPrices:
    _check(retail, feed_in, supply_wh, demand_wh)
    with localcontext() as ctx:
        ctx.prec = 34
        mid = (retail + feed_in) / 2
        tsp, tbp = Decimal(supply_wh), Decimal(demand_wh)
        if supply_wh < demand_wh:
            return CommunityPrices(mid, (mid * tsp + retail * (tbp - tsp)) / tbp)
        if supply_wh > demand_wh:
            return CommunityPrices((mid * tbp + feed_in * (tsp - tbp)) / tsp, mid)
        return CommunityPrices(mid, mid)


def community_prices(
    mechanism: str, *, supply_wh: int, demand_wh: int, retail: Decimal, feed_in: Decimal
) -> CommunityPrices:
    if mechanism == SDR:
        return sdr_prices(supply_wh=supply_wh, demand_wh=demand_wh, retail=retail, feed_in=feed_in)
    if mechanism == MMR:
        return mmr_prices(supply_wh=supply_wh, demand_wh=demand_wh, retail=retail, feed_in=feed_in)
    raise ValueError(f"unknown community pricing mechanism {mechanism!r}")


@dataclass(frozen=True, slots=True)
class CommunityBalance:
    buyers_pay: Decimal
    sellers_receive: Decimal
    grid_import_cost: Decimal
    grid_export_revenue: Decimal

    @property
    def imbalance(self) -> Decimal:
        """Zero when the community is budget-balanced against the grid."""
        return (self.buyers_pay + self.grid_export_revenue) - (
            self.sellers_receive + self.grid_import_cost
        )


def community_balance(
    prices: CommunityPrices, *, supply_wh: int, demand_wh: int, retail: Decimal, feed_in: Decimal
) -> CommunityBalance:
    """Money flows of one interval under a community price (amounts per kWh → per Wh / 1000)."""
    with localcontext() as ctx:
        ctx.prec = 34
        k = Decimal(1000)
        return CommunityBalance(
            buyers_pay=prices.buyer_price * demand_wh / k,
            sellers_receive=prices.seller_price * supply_wh / k,
            grid_import_cost=retail * max(demand_wh - supply_wh, 0) / k,
            grid_export_revenue=feed_in * max(supply_wh - demand_wh, 0) / k,
        )
