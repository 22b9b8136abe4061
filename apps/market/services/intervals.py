"""Clearing of one delivery interval: orders → pure engine (apps.market.clearing) → trades."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import cast

from django.db import transaction
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.intervals import floor_interval
from apps.core.types import Actor
from apps.market import clearing as engine
from apps.market import pricing
from apps.market.lock_objects import open_orders_lock_for_clearing, settlement_run_lock
from apps.market.models import ClearingResult, Mechanism, Order, SettlementRun, Trade
from apps.market.selectors import gate_closure, market_settings_get, period_bounds, tariff_at

PPM = engine.PPM
INTERVAL_HOURS = Decimal("0.25")


def _ppm(factor: Decimal) -> int:
    return int((factor * PPM).to_integral_value())


def network_for(*, member_ids: list[int], tariff, capacity_share: Decimal, fees: bool = True):
    """The engine's view of the grid: zones of the members, capacities (Wh per interval)."""
    from apps.grid.models import ConnectionPoint

    zones: dict[int, engine.Zone] = {}
    labels: dict[int, str] = {}
    tcap: dict[int, int | None] = {}
    fcap: dict[int, int | None] = {}
    for cp in ConnectionPoint.objects.filter(member_id__in=member_ids).select_related(
        "transformer__feeder__substation"
    ):
        t = cp.transformer
        f = t.feeder
        zones[cp.member_id] = engine.Zone(t.pk, f.pk, f.substation_id)
        labels[cp.member_id] = f"{f.substation.name} / {f.name} / {t.name}"
        # kVA ≈ kW at unity power factor; energy per 15 minutes = kW × 0.25 h × 1000 Wh/kWh.
        tcap[t.pk] = int(Decimal(t.capacity_kva) * INTERVAL_HOURS * 1000 * capacity_share)
        fcap[f.pk] = int(Decimal(f.capacity_kw) * INTERVAL_HOURS * 1000 * capacity_share)
    network = engine.Network(
        zones=zones,
        fee_per_kwh=cast(
            "tuple[float, float, float]",
            tuple(float(x) for x in tariff.fees) if fees else (0.0, 0.0, 0.0),
        ),
        loss_ppm=cast("tuple[int, int, int]", tuple(_ppm(x) for x in tariff.losses)),
        transformer_capacity_wh=tcap,
        feeder_capacity_wh=fcap,
    )
    return network, labels


def settlement_run_for(*, at: datetime, mechanism: str) -> SettlementRun:
    start, end = period_bounds(at=at)
    run, _ = SettlementRun.objects.get_or_create(
        period_start=start, defaults={"period_end": end, "mechanism": mechanism}
    )
    return run


@transaction.atomic
def interval_clear(
    *, interval_start: datetime, now: datetime | None = None, actor: Actor = None
) -> ClearingResult:
    """Clear one interval after its gate closure. Idempotent: a cleared interval is returned."""
    now = now or timezone.now()
    interval_start = floor_interval(interval_start)
    existing = ClearingResult.objects.filter(interval_start=interval_start).first()
    if existing is not None:
        return existing
    if now < gate_closure(interval_start=interval_start):
        raise ApplicationError(
            "The gate for this interval is still open.",
            {"interval_start": interval_start.isoformat()},
        )
    settings_row = market_settings_get()
    mechanism = settings_row.mechanism
    tariff = tariff_at(at=interval_start)
    run = settlement_run_for(at=interval_start, mechanism=mechanism)
    run = settlement_run_lock(run.pk)
    # A concurrent worker may have cleared the interval while we waited for the run's lock.
    existing = ClearingResult.objects.filter(interval_start=interval_start).first()
    if existing is not None:
        return existing
    if run.status != SettlementRun.Status.OPEN:
        raise ApplicationError(
            "The settlement run of this interval is already closed.", {"run": run.pk}
        )
    orders = open_orders_lock_for_clearing(interval_start)
    if not orders:  # nothing to match (e.g. a night interval or one the beat caught up on)
        return ClearingResult.objects.create(
            run=run, interval_start=interval_start, mechanism=mechanism, tariff=tariff
        )
    member_ids = sorted({o.member_id for o in orders})
    community = mechanism in (Mechanism.SDR, Mechanism.MMR)
    network, labels = network_for(
        member_ids=member_ids,
        tariff=tariff,
        capacity_share=settings_row.capacity_share,
        fees=not community,
    )
    by_id = {o.pk: o for o in orders}
    engine_orders = []
    for o in orders:
        if o.member_id not in network.zones:
            continue
        limit = float(o.limit_price)
        if community:
            # Community pricing needs no bids: every order is willing, only topology, capacity
            # and green/partner preferences decide the allocation; prices come from pricing.py.
            limit = float(tariff.retail_price) * 10 if o.side == Order.Side.BID else 0.0
        partners: frozenset[int] = frozenset()
        engine_orders.append(
            engine.Order(o.pk, o.member_id, o.side, int(o.wh), limit, o.green, partners)
        )
    _attach_partners(engine_orders)
    t0 = time.perf_counter()
    result = engine.clear(engine_orders, network)
    duration_ms = (time.perf_counter() - t0) * 1000
    price = Decimal(str(result.price)) if result.price is not None else None
    if community:
        prices = pricing.community_prices(
            mechanism,
            supply_wh=result.offer_wh,
            demand_wh=result.bid_wh,
            retail=tariff.retail_price,
            feed_in=tariff.feed_in_price,
        ).quantize()
        price = prices.seller_price if engine_orders else None
    clearing = ClearingResult.objects.create(
        run=run,
        interval_start=interval_start,
        mechanism=mechanism,
        tariff=tariff,
        price=price,
        bid_wh=result.bid_wh,
        offer_wh=result.offer_wh,
        traded_wh=result.traded_wh,
        loss_wh=sum(t.loss_wh for t in result.trades),
        curtailed_wh=result.curtailed_wh,
        order_count=len(engine_orders),
        duration_ms=duration_ms,
    )
    Trade.objects.bulk_create(
        [
            Trade(
                clearing=clearing,
                interval_start=interval_start,
                seller_id=t.seller_member_id,
                buyer_id=t.buyer_member_id,
                seller_order_id=t.seller_order_id,
                buyer_order_id=t.buyer_order_id,
                distance=t.distance,
                seller_zone=labels.get(t.seller_member_id, ""),
                buyer_zone=labels.get(t.buyer_member_id, ""),
                wh_from_seller=t.wh_from_seller,
                wh_delivered=t.wh_delivered,
                loss_wh=t.loss_wh,
                price=price,  # type: ignore[misc]  # a clearing with trades has a price
                fee_per_kwh=Decimal(str(t.fee_per_kwh)),
                green=by_id[t.seller_order_id].green,
            )
            for t in result.trades
        ]
    )
    matched: dict[int, int] = {}
    for t in result.trades:
        matched[t.seller_order_id] = matched.get(t.seller_order_id, 0) + t.wh_from_seller
        matched[t.buyer_order_id] = matched.get(t.buyer_order_id, 0) + t.wh_delivered
    changes = []
    for o in orders:
        got = matched.get(o.pk, 0)
        o.matched_wh = got
        changes.append(
            (
                o,
                Order.Status.UNMATCHED
                if got == 0
                else (Order.Status.MATCHED if got >= o.wh else Order.Status.PARTIAL),
            )
        )
    Order.transition_each(changes, actor=actor, update_fields=["matched_wh"])
    audit_log_write(
        event=AuditEvent.MARKET_INTERVAL_CLEARED,
        actor=actor,
        target=clearing,
        details={
            "interval_start": interval_start.isoformat(),
            "mechanism": mechanism,
            "price": str(price) if price is not None else None,
            "trades": len(result.trades),
            "traded_wh": result.traded_wh,
            "curtailed_wh": result.curtailed_wh,
        },
    )
    return clearing


def _attach_partners(engine_orders: list[engine.Order]) -> None:
    """Replace each order's partner set by the member's preferred partners (one query)."""
    from apps.market.models import TradingPreference

    member_ids = {o.member_id for o in engine_orders}
    partners: dict[int, set[int]] = {}
    for member_id, partner_id in TradingPreference.preferred_partners.through.objects.filter(
        tradingpreference__member_id__in=member_ids
    ).values_list("tradingpreference__member_id", "member_id"):
        partners.setdefault(member_id, set()).add(partner_id)
    for i, o in enumerate(engine_orders):
        if o.member_id in partners:
            engine_orders[i] = engine.Order(
                o.order_id,
                o.member_id,
                o.side,
                o.wh,
                o.limit,
                o.green,
                frozenset(partners[o.member_id]),
            )


@transaction.atomic
def settlement_run_close(*, run: SettlementRun, now: datetime | None = None) -> SettlementRun:
    """OPEN → CLEARED once the period has passed: clears any interval the beat missed."""
    from apps.core.intervals import iter_intervals

    now = now or timezone.now()
    run = settlement_run_lock(run.pk)
    if run.status != SettlementRun.Status.OPEN:
        return run
    if now < run.period_end:
        raise ApplicationError("The settlement period has not ended.", {"run": run.pk})
    done = set(ClearingResult.objects.filter(run=run).values_list("interval_start", flat=True))
    for start in iter_intervals(run.period_start, run.period_end):
        if start not in done:
            interval_clear(interval_start=start, now=now)
    run.cleared_at = now
    run.transition_to(
        SettlementRun.Status.CLEARED,
        actor=None,
        event=AuditEvent.SETTLEMENT_RUN_CLEARED,
        update_fields=["cleared_at"],
    )
    return run
