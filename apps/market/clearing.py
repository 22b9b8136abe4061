"""Grid-aware uniform-price double auction (pay-as-clear) for one delivery interval.

Pure Python, no Django import: the services, the benchmark and the simulator call it directly.

Model (see docs/market.md):

* An offer sells ``wh`` Wh injected at the seller's connection point at no less than ``limit``
  per kWh. A bid buys ``wh`` Wh *delivered* at the buyer's connection point at no more than
  ``limit`` per kWh, all network fees and losses included.
* The topological distance between seller and buyer is LOCAL (same transformer), FEEDER (same
  feeder, another transformer) or REGIONAL (another feeder / substation). The grid fee per kWh
  injected and the loss factor grow with the distance (docs/domain.md, "Grid fees").
* One uniform energy price ``P`` (per kWh injected) clears the interval: the crossing of the
  aggregate supply curve (offer limits) and the aggregate demand curve with bid limits
  converted to the seller side at the LOCAL distance, ``limit·(1 − loss₀) − fee₀``. The
  marginal pair's prices bound ``P`` and ``P`` is their midpoint.
* Every seller with ``limit ≤ P`` and every buyer for whom ``limit·(1 − loss_d) − fee_d ≥ P`` at
  the distance ``d`` of the match may trade. For a match of ``q`` Wh injected the seller
  receives ``q·P``, the buyer pays ``q·(P + fee_d)`` and receives ``ceil(q·(1 − loss_d))`` Wh, so
  the buyer's price per delivered kWh never exceeds ``(P + fee_d)/(1 − loss_d) ≤ limit``.
* Matching is nearest first, so energy travels as little as possible: preferred partners,
  then inside each transformer, then inside each feeder, then across feeders. Within a stage
  green-only buyers are served by green offers first. Orders rank by price (cheapest offer,
  highest bid) and then by order id, so the result is deterministic.
* Capacity: a FEEDER match loads the seller's and the buyer's transformers, a REGIONAL match
  also both feeders. The net P2P flow through every transformer and feeder stays within its
  capacity (Wh per interval) in both directions; volume the limits block is reported as
  curtailed (the difference to the same auction without limits).

Complexity: O(n log n) for sorting plus O(n) per stage (two pointers over sorted orders per
zone), never pairwise; preferred partners add O(number of listed partner pairs).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

LOCAL, FEEDER, REGIONAL = 0, 1, 2
DISTANCE_NAMES = ("same transformer", "same feeder", "across feeders")
PPM = 1_000_000
BID, OFFER = "bid", "offer"


@dataclass(frozen=True, slots=True)
class Order:
    order_id: int
    member_id: int
    side: str  # BID or OFFER
    wh: int
    limit: float  # per kWh; bids: delivered incl. fees and losses; offers: injected
    green: bool = False  # offers: the energy is renewable; bids: accept green energy only
    preferred: frozenset[int] = frozenset()  # member ids matched first


@dataclass(frozen=True, slots=True)
class Zone:
    transformer: int
    feeder: int
    substation: int


@dataclass(frozen=True, slots=True)
class Network:
    """Topology, capacities (Wh per interval; None = unlimited), fees and loss factors."""

    zones: Mapping[int, Zone]  # member id -> zone
    fee_per_kwh: tuple[float, float, float]  # by distance LOCAL, FEEDER, REGIONAL
    loss_ppm: tuple[int, int, int]  # loss factor by distance, parts per million
    transformer_capacity_wh: Mapping[int, int | None] = field(default_factory=dict)
    feeder_capacity_wh: Mapping[int, int | None] = field(default_factory=dict)


class Trade(NamedTuple):
    seller_order_id: int
    buyer_order_id: int
    seller_member_id: int
    buyer_member_id: int
    distance: int
    wh_from_seller: int
    wh_delivered: int
    loss_wh: int
    price: float  # per kWh injected, paid to the seller
    fee_per_kwh: float  # per kWh injected, paid by the buyer on top of the price

    @property
    def seller_amount(self) -> float:
        return self.wh_from_seller * self.price / 1000

    @property
    def buyer_amount(self) -> float:
        return self.wh_from_seller * (self.price + self.fee_per_kwh) / 1000


@dataclass(slots=True)
class ClearingResult:
    price: float | None
    trades: list[Trade]
    curtailed_wh: int  # delivered Wh the capacity limits prevented
    transformer_flow_wh: dict[int, int]  # net P2P export out of each transformer zone
    feeder_flow_wh: dict[int, int]
    bid_wh: int
    offer_wh: int

    @property
    def traded_wh(self) -> int:
        return sum(t.wh_delivered for t in self.trades)


class _State:
    __slots__ = ("green", "limit", "order", "rank", "rest", "zone")

    def __init__(self, order: Order, zone: Zone, rank: int) -> None:
        self.order = order
        self.rest = order.wh
        self.zone = zone
        self.rank = rank
        self.limit = order.limit
        self.green = order.green


def distance(a: Zone, b: Zone) -> int:
    if a.transformer == b.transformer:
        return LOCAL
    if a.feeder == b.feeder:
        return FEEDER
    return REGIONAL


def buyer_max_price(limit: float, fee: float, loss_ppm: int) -> float:
    """The highest seller-side price at which a buyer with `limit` can still trade."""
    return limit * (PPM - loss_ppm) / PPM - fee


def validate(orders: Sequence[Order], network: Network) -> None:
    sides: dict[int, str] = {}
    for o in orders:
        if o.side not in (BID, OFFER):
            raise ValueError(f"order {o.order_id}: unknown side {o.side!r}")
        if o.wh <= 0:
            raise ValueError(f"order {o.order_id}: quantity must be positive")
        if not math.isfinite(o.limit) or o.limit < 0:
            raise ValueError(f"order {o.order_id}: limit must be a finite non-negative price")
        if o.member_id not in network.zones:
            raise ValueError(f"order {o.order_id}: member {o.member_id} has no grid zone")
        if sides.setdefault(o.member_id, o.side) != o.side:
            raise ValueError(f"member {o.member_id} both buys and sells in one interval")
    if any(not 0 <= p < PPM for p in network.loss_ppm):
        raise ValueError("loss factors must be in [0, 1)")


def clearing_price(
    offers: Sequence[Order], bids: Sequence[Order], network: Network
) -> float | None:
    """Crossing of the aggregate curves (bids converted to the seller side at LOCAL distance)."""
    fee0, loss0 = network.fee_per_kwh[LOCAL], network.loss_ppm[LOCAL]
    asks = sorted((o.limit, o.order_id, o.wh) for o in offers)
    wants = sorted(
        (-buyer_max_price(b.limit, fee0, loss0), b.order_id, b.wh * PPM / (PPM - loss0))
        for b in bids
    )
    i = j = 0
    rest_a = asks[0][2] if asks else 0.0
    rest_b = wants[0][2] if wants else 0.0
    last: tuple[float, float] | None = None
    while i < len(asks) and j < len(wants) and asks[i][0] <= -wants[j][0]:
        last = (asks[i][0], -wants[j][0])
        q = min(rest_a, rest_b)
        rest_a -= q
        rest_b -= q
        if rest_a <= 0:
            i += 1
            rest_a = asks[i][2] if i < len(asks) else 0.0
        if rest_b <= 1e-9:
            j += 1
            rest_b = wants[j][2] if j < len(wants) else 0.0
    if last is None:
        return None
    low, high = last
    price = round((low + high) / 2, 6)
    return min(max(price, low), high)


class _Matcher:
    def __init__(self, network: Network, price: float, capacity: bool, record: bool = True) -> None:
        self.net = network
        self.price = price
        self.capacity = capacity
        self.record = record  # False: only count the delivered volume (curtailment reference)
        self.delivered = 0
        self.tflow: dict[int, int] = defaultdict(int)
        self.fflow: dict[int, int] = defaultdict(int)
        self.trades: list[Trade] = []
        self.max_price = [
            (network.fee_per_kwh[d], network.loss_ppm[d]) for d in (LOCAL, FEEDER, REGIONAL)
        ]

    def _headroom_out(self, z: Zone, d: int) -> int:
        room = math.inf
        if d >= FEEDER:
            cap = self.net.transformer_capacity_wh.get(z.transformer)
            if cap is not None:
                room = cap - self.tflow[z.transformer]
        if d == REGIONAL:
            cap = self.net.feeder_capacity_wh.get(z.feeder)
            if cap is not None:
                room = min(room, cap - self.fflow[z.feeder])
        return room  # type: ignore[return-value]

    def _headroom_in(self, z: Zone, d: int) -> int:
        room = math.inf
        if d >= FEEDER:
            cap = self.net.transformer_capacity_wh.get(z.transformer)
            if cap is not None:
                room = cap + self.tflow[z.transformer]
        if d == REGIONAL:
            cap = self.net.feeder_capacity_wh.get(z.feeder)
            if cap is not None:
                room = min(room, cap + self.fflow[z.feeder])
        return room  # type: ignore[return-value]

    def match(self, b: _State, s: _State) -> str:
        """Trade as much as possible between b and s. Returns which side is blocked/empty."""
        if b.green and not s.green:
            return "pair"
        zs, zb = s.zone, b.zone
        d = (
            LOCAL
            if zs.transformer == zb.transformer
            else (FEEDER if zs.feeder == zb.feeder else REGIONAL)
        )
        fee, loss = self.max_price[d]
        if b.limit * (PPM - loss) / PPM - fee < self.price:
            return "buyer"
        keep = PPM - loss
        q = min(s.rest, b.rest * PPM // keep)
        if d and self.capacity:
            out_room = self._headroom_out(zs, d)
            if out_room <= 0:
                return "seller"
            in_room = self._headroom_in(zb, d)
            if in_room <= 0:
                return "buyer"
            q = int(min(q, out_room, in_room))
        delivered = -(-q * keep // PPM)
        s.rest -= q
        b.rest -= delivered
        self.delivered += delivered
        if d:
            self.tflow[zs.transformer] += q
            self.tflow[zb.transformer] -= q
            if d == REGIONAL:
                self.fflow[zs.feeder] += q
                self.fflow[zb.feeder] -= q
        if self.record:
            self.trades.append(
                Trade(
                    s.order.order_id,
                    b.order.order_id,
                    s.order.member_id,
                    b.order.member_id,
                    d,
                    q,
                    delivered,
                    q - delivered,
                    self.price,
                    fee,
                )
            )
        return "done"

    def two_pointer(self, buyers: list[_State], sellers: list[_State]) -> None:
        i = j = 0
        while i < len(buyers) and j < len(sellers):
            b, s = buyers[i], sellers[j]
            if b.rest <= 0:
                i += 1
                continue
            if s.rest <= 0:
                j += 1
                continue
            outcome = self.match(b, s)
            if outcome == "buyer":
                i += 1
            elif outcome in ("seller", "pair"):
                j += 1

    def stage(self, buyers: list[_State], sellers: list[_State]) -> None:
        """Green-only buyers take green offers first; everyone else takes what is left."""
        green_buyers = [b for b in buyers if b.green and b.rest > 0]
        if green_buyers:
            self.two_pointer(green_buyers, [s for s in sellers if s.green and s.rest > 0])
            buyers = [b for b in buyers if not b.green]
            sellers = [s for s in sellers if s.rest > 0]
        self.two_pointer(buyers, sellers)


def _group(states: Iterable[_State], key) -> dict[int, list[_State]]:
    groups: dict[int, list[_State]] = defaultdict(list)
    for st in states:
        groups[key(st.zone)].append(st)
    return groups


def _match_all(
    offers: list[Order],
    bids: list[Order],
    network: Network,
    price: float,
    capacity: bool,
    record: bool = True,
) -> _Matcher:
    zones = network.zones
    fee_r, loss_r = network.fee_per_kwh[LOCAL], network.loss_ppm[LOCAL]
    sellers = [
        _State(o, zones[o.member_id], rank)
        for rank, o in enumerate(sorted(offers, key=lambda o: (o.limit, o.order_id)))
        if o.limit <= price
    ]
    buyers = [
        _State(b, zones[b.member_id], rank)
        for rank, b in enumerate(sorted(bids, key=lambda b: (-b.limit, b.order_id)))
        if buyer_max_price(b.limit, fee_r, loss_r) >= price
    ]
    m = _Matcher(network, price, capacity, record)

    # Stage 0: preferred partners (either side may list the other), in rank order.
    if any(o.order.preferred for o in sellers) or any(b.order.preferred for b in buyers):
        seller_by_member = {s.order.member_id: s for s in sellers}
        buyer_by_member = {b.order.member_id: b for b in buyers}
        pairs: set[tuple[int, int]] = set()
        for b in buyers:
            for mid in b.order.preferred:
                s = seller_by_member.get(mid)
                if s is not None:
                    pairs.add((b.rank, s.rank))
        for s in sellers:
            for mid in s.order.preferred:
                b = buyer_by_member.get(mid)
                if b is not None:
                    pairs.add((b.rank, s.rank))
        b_by_rank = {b.rank: b for b in buyers}
        s_by_rank = {s.rank: s for s in sellers}
        for br, sr in sorted(pairs):
            b, s = b_by_rank[br], s_by_rank[sr]
            if b.rest > 0 and s.rest > 0:
                m.match(b, s)

    # Stages 1-3: nearest first.
    for key in (
        lambda z: z.transformer,
        lambda z: z.feeder,
        lambda z: 0,
    ):
        bgroups = _group((b for b in buyers if b.rest > 0), key)
        sgroups = _group((s for s in sellers if s.rest > 0), key)
        for zone_key in sorted(bgroups.keys() & sgroups.keys()):
            m.stage(bgroups[zone_key], sgroups[zone_key])
    return m


def clear(
    orders: Sequence[Order], network: Network, *, report_curtailment: bool = True
) -> ClearingResult:
    """Clear one delivery interval. Deterministic: the same input gives the same output."""
    validate(orders, network)
    offers = [o for o in orders if o.side == OFFER]
    bids = [o for o in orders if o.side == BID]
    bid_wh = sum(b.wh for b in bids)
    offer_wh = sum(o.wh for o in offers)
    price = clearing_price(offers, bids, network)
    if price is None:
        return ClearingResult(None, [], 0, {}, {}, bid_wh, offer_wh)
    m = _match_all(offers, bids, network, price, capacity=True)
    curtailed = 0
    limited = any(v is not None for v in network.transformer_capacity_wh.values()) or any(
        v is not None for v in network.feeder_capacity_wh.values()
    )
    if report_curtailment and limited:
        free = _match_all(offers, bids, network, price, capacity=False, record=False)
        curtailed = max(0, free.delivered - m.delivered)
    return ClearingResult(
        price=price,
        trades=m.trades,
        curtailed_wh=curtailed,
        transformer_flow_wh={k: v for k, v in sorted(m.tflow.items()) if v},
        feeder_flow_wh={k: v for k, v in sorted(m.fflow.items()) if v},
        bid_wh=bid_wh,
        offer_wh=offer_wh,
    )
