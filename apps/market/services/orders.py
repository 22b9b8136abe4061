"""Preferences and orders: validation with field-level errors, nothing half-written."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.intervals import INTERVAL, ensure_utc, floor_interval
from apps.core.types import Actor
from apps.grid.selectors import forecast_values_at
from apps.market import conf
from apps.market.lock_objects import (
    member_order_lock,
    open_orders_lock_for_member,
)
from apps.market.models import Order, Tariff, TradingPreference
from apps.market.selectors import gate_closure, selectable_partners, tariff_at

GREEN_ASSETS = ("pv", "shared_pv", "shared_wind")


def _price(value: object, field: str, errors: dict[str, list[str]]) -> Decimal | None:
    try:
        price = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        errors.setdefault(field, []).append("Enter a price per kWh.")
        return None
    if not price.is_finite():
        errors.setdefault(field, []).append("Enter a price per kWh.")
        return None
    return price


def _in_bounds(price: Decimal | None, tariff: Tariff, field: str, errors: dict) -> None:
    """Prices outside [feed-in, retail] are dominated by trading with the grid: rejected."""
    if price is None:
        return
    if price < tariff.feed_in_price or price > tariff.retail_price:
        errors.setdefault(field, []).append(
            f"Must be between the feed-in price {tariff.feed_in_price} and the retail price "
            f"{tariff.retail_price} per kWh."
        )


def _check_member(member: Member) -> None:
    if member is None or not member.is_active_member:
        raise ApplicationError(
            "Only active members can trade.", {"member": ["Member is not active."]}
        )


def member_is_green(member: Member) -> bool:
    return member.meters.filter(asset_kind__in=GREEN_ASSETS).exists()


@transaction.atomic
def preference_update(
    *,
    member: Member,
    actor: Actor,
    max_buy_price: Decimal | str | None,
    min_sell_price: Decimal | str | None,
    green_only: bool = False,
    preferred_partner_ids: Iterable[int] = (),
    battery_reserve_percent: int = 0,
    auto_trade: bool = True,
    partner_selectable: bool = False,
    now: datetime | None = None,
) -> TradingPreference:
    """Create or replace a member's standing preferences. Contradictions are field errors."""
    _check_member(member)
    now = now or timezone.now()
    tariff = tariff_at(at=now)
    errors: dict[str, list[str]] = {}
    buy = _price(max_buy_price, "max_buy_price", errors)
    sell = _price(min_sell_price, "min_sell_price", errors)
    _in_bounds(buy, tariff, "max_buy_price", errors)
    _in_bounds(sell, tariff, "min_sell_price", errors)
    try:
        reserve = int(battery_reserve_percent)
    except (TypeError, ValueError):
        reserve = -1
    if not 0 <= reserve <= 100:
        errors.setdefault("battery_reserve_percent", []).append("Enter a percentage 0–100.")
    partner_ids = sorted({int(p) for p in preferred_partner_ids})
    if member.pk in partner_ids:
        errors.setdefault("preferred_partners", []).append("You cannot prefer yourself.")
    # Only active members who opted in can be chosen; the answer never says which of the given
    # ids is inactive, unknown or not opted in, nor anything about another member's assets.
    partners = list(selectable_partners(member=member).filter(pk__in=partner_ids))
    if len(partners) != len([p for p in partner_ids if p != member.pk]):
        errors.setdefault("preferred_partners", []).append(
            "Choose partners from the members who can be selected."
        )
    if (
        reserve == 100
        and auto_trade
        and member_is_green(member)
        and not member.meters.exclude(asset_kind__in=GREEN_ASSETS).exists()
    ):
        errors.setdefault("battery_reserve_percent", []).append(
            "A 100 % reserve leaves nothing to sell; switch automatic trading off instead."
        )
    if errors:
        raise ApplicationError("The preferences are not valid.", errors)
    pref, _ = TradingPreference.objects.update_or_create(
        member=member,
        defaults={
            "max_buy_price": buy,
            "min_sell_price": sell,
            "green_only": bool(green_only),
            "battery_reserve_percent": reserve,
            "auto_trade": bool(auto_trade),
            "partner_selectable": bool(partner_selectable),
        },
    )
    pref.preferred_partners.set(partners)
    audit_log_write(
        event=AuditEvent.TRADING_PREFERENCE_UPDATED,
        actor=actor,
        target=pref,
        details={
            "max_buy_price": str(buy),
            "min_sell_price": str(sell),
            "green_only": bool(green_only),
            "preferred_partners": partner_ids,
            "battery_reserve_percent": reserve,
            "auto_trade": bool(auto_trade),
        },
    )
    return pref


def _max_order_wh(member: Member) -> int:
    # Several sites: the member's connections together.
    power_w = sum(cp.contracted_power_w for cp in member.connection_points.all())
    if power_w:
        return int(power_w * INTERVAL.total_seconds() / 3600)
    return int(conf.get("MARKET_MAX_ORDER_WH"))


@transaction.atomic
def order_place(
    *,
    member: Member,
    actor: Actor,
    interval_start: datetime,
    side: str,
    wh: int | str,
    limit_price: Decimal | str | None,
    green: bool = False,
    origin: str = Order.Origin.MANUAL,
    now: datetime | None = None,
) -> Order:
    """Place an order for one delivery interval; it replaces the member's open order there."""
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    if member is None or not Member.objects.filter(pk=member.pk).exists():
        raise ApplicationError("Unknown member.", {"member": ["Unknown member."]})
    _check_member(member)
    if not member.connection_points.exists():
        raise ApplicationError(
            "The member has no grid connection point.", {"member": ["No grid connection point."]}
        )
    try:
        interval_start = ensure_utc(interval_start)
    except (ValueError, AttributeError):
        raise ApplicationError(
            "Invalid interval.", {"interval_start": ["Enter an aware date and time."]}
        ) from None
    if floor_interval(interval_start) != interval_start:
        errors.setdefault("interval_start", []).append("Must start on a 15-minute boundary.")
    elif now >= gate_closure(interval_start=interval_start):
        errors.setdefault("interval_start", []).append("Gate closure for this interval has passed.")
    elif interval_start > now + timedelta(days=int(conf.get("MARKET_MAX_DAYS_AHEAD"))):
        errors.setdefault("interval_start", []).append("Too far in the future.")
    if side not in Order.Side.values:
        errors.setdefault("side", []).append("Choose buy or sell.")
    try:
        quantity = int(wh)
        if Decimal(str(wh)) != quantity:
            raise ValueError
    except (TypeError, ValueError, InvalidOperation):
        quantity = None
        errors.setdefault("wh", []).append("Enter a whole number of Wh.")
    if quantity is not None:
        if quantity <= 0:
            errors.setdefault("wh", []).append("Must be positive.")
        elif quantity > _max_order_wh(member):
            errors.setdefault("wh", []).append(
                f"More than the connection can carry in 15 minutes ({_max_order_wh(member)} Wh)."
            )
    price = _price(limit_price, "limit_price", errors)
    if "interval_start" not in errors:
        try:
            _in_bounds(price, tariff_at(at=interval_start), "limit_price", errors)
        except ApplicationError:
            errors.setdefault("interval_start", []).append("No tariff for this interval.")
    if errors:
        raise ApplicationError("The order is not valid.", errors)
    assert quantity is not None and price is not None  # else `errors` says why
    for old in open_orders_lock_for_member(member=member, interval_start=interval_start):
        old.transition_to(Order.Status.CANCELLED, actor=actor)
    order = Order.objects.create(
        member=member,
        interval_start=interval_start,
        side=side,
        wh=quantity,
        limit_price=price,
        green=bool(green),
        origin=origin,
    )
    audit_log_write(
        event=AuditEvent.ORDER_PLACED,
        actor=actor,
        target=order,
        details={
            "interval_start": interval_start.isoformat(),
            "side": side,
            "wh": quantity,
            "limit_price": str(price),
            "origin": origin,
        },
    )
    return order


@transaction.atomic
def order_cancel(
    *, member: Member, actor: Actor, order_id: int, now: datetime | None = None
) -> Order:
    now = now or timezone.now()
    order = member_order_lock(member=member, order_id=order_id)
    if order is None:
        from django.http import Http404

        raise Http404("No such order.")
    if now >= gate_closure(interval_start=order.interval_start):
        raise ApplicationError("Gate closure has passed.", {"order": ["Gate closure has passed."]})
    order.transition_to(Order.Status.CANCELLED, actor=actor, event=AuditEvent.ORDER_CANCELLED)
    return order


def _grid_forecast_net_wh(*, member_ids: list[int], interval_start: datetime) -> dict[int, int]:
    """Net position from the grid app's day-ahead meter forecasts (series `meter:<serial>:load`
    and `meter:<serial>:pv`), for members all of whose meters have one covering the interval."""
    from apps.meters.models import Meter

    meters: dict[int, list[tuple[str, bool]]] = {}
    for member_id, serial, kind in Meter.objects.filter(
        member_id__in=member_ids, active_to__isnull=True
    ).values_list("member_id", "serial", "asset_kind"):
        pv = kind in GREEN_ASSETS
        meters.setdefault(member_id, []).append((f"meter:{serial}:{'pv' if pv else 'load'}", pv))
    keys = [key for rows in meters.values() for key, _ in rows]
    latest = forecast_values_at(series_keys=keys, at=interval_start)
    out: dict[int, int] = {}
    for member_id, rows in meters.items():
        if all(key in latest for key, _ in rows):
            out[member_id] = sum(-latest[k] if pv else latest[k] for k, pv in rows)
    return out


def forecast_net_wh(*, member_ids: list[int], interval_start: datetime) -> dict[int, int]:
    """Each member's forecast net position (import − export, Wh) for one interval: the grid
    app's day-ahead meter forecasts where they exist, else seasonal-naive from metered history
    (the same interval one day earlier, else one week earlier). Members with neither are left
    out (no automatic order)."""
    from apps.meters.selectors import member_interval_energy

    out = _grid_forecast_net_wh(member_ids=member_ids, interval_start=interval_start)
    for days in (1, 7):
        todo = [m for m in member_ids if m not in out]
        if not todo:
            break
        ref = interval_start - timedelta(days=days)
        data = member_interval_energy(member_ids=todo, start=ref, end=ref + INTERVAL)
        for (member_id, _), energy in data.items():
            out[member_id] = energy.import_wh - energy.export_wh
    return out


@transaction.atomic
def orders_generate(
    *, interval_start: datetime, now: datetime | None = None, forecast: dict[int, int] | None = None
) -> int:
    """Automatic orders for one interval from standing preferences and the forecast position.

    Skips members who placed a manual order for the interval. Returns the orders created.
    Idempotent: a member's open automatic order is replaced by the fresh one.
    """
    now = now or timezone.now()
    interval_start = floor_interval(interval_start)
    if now >= gate_closure(interval_start=interval_start):
        return 0
    tariff = tariff_at(at=interval_start)
    prefs = list(
        TradingPreference.objects.filter(
            auto_trade=True,
            member__status=Member.Status.ACTIVE,
            member__connection_points__isnull=False,
        )
        .distinct()
        .select_related("member")
        .prefetch_related("member__connection_points")
    )
    if not prefs:
        return 0
    member_ids = [p.member_id for p in prefs]
    if forecast is None:
        forecast = forecast_net_wh(member_ids=member_ids, interval_start=interval_start)
    manual = set(
        Order.objects.filter(
            member_id__in=member_ids,
            interval_start=interval_start,
            origin=Order.Origin.MANUAL,
            status=Order.Status.OPEN,
        ).values_list("member_id", flat=True)
    )
    green_members = set(
        Member.objects.filter(pk__in=member_ids, meters__asset_kind__in=GREEN_ASSETS).values_list(
            "pk", flat=True
        )
    )
    new: list[Order] = []
    for pref in prefs:
        net = forecast.get(pref.member_id)
        if net is None or net == 0 or pref.member_id in manual:
            continue
        if net > 0:
            side, wh, price, green = Order.Side.BID, net, pref.max_buy_price, pref.green_only
        else:
            side = Order.Side.OFFER
            wh = (-net) * (100 - pref.battery_reserve_percent) // 100
            price, green = pref.min_sell_price, pref.member_id in green_members
        # Preferences were validated against the tariff when saved; a newer tariff may have
        # moved the bounds, so clamp rather than reject.
        price = min(max(price, tariff.feed_in_price), tariff.retail_price)
        wh = min(wh, _max_order_wh(pref.member))
        if wh <= 0:
            continue
        new.append(
            Order(
                member_id=pref.member_id,
                interval_start=interval_start,
                side=side,
                wh=wh,
                limit_price=price,
                green=green,
                origin=Order.Origin.AUTO,
            )
        )
    # Replace the members' open automatic orders for the interval (a re-run is harmless).
    Order.transition_where(
        Order.objects.filter(
            member_id__in=[o.member_id for o in new],
            interval_start=interval_start,
            origin=Order.Origin.AUTO,
        ),
        Order.Status.OPEN,
        Order.Status.CANCELLED,
    )
    Order.objects.bulk_create(new)
    if new:
        audit_log_write(
            event=AuditEvent.ORDERS_GENERATED,
            actor="market.orders_generate",
            target_type="market.order",
            target_id=interval_start.isoformat(),
            details={
                "interval_start": interval_start.isoformat(),
                "orders": len(new),
                "bid_wh": sum(o.wh for o in new if o.side == Order.Side.BID),
                "offer_wh": sum(o.wh for o in new if o.side == Order.Side.OFFER),
            },
        )
    return len(new)
