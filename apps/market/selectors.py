"""Reads of the market app. Members only ever see their own orders, trades and statements:
selectors that take a `member` filter by it and raise Http404 for anything else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.http import Http404

from apps.core.exceptions import ApplicationError
from apps.core.intervals import INTERVAL, ensure_utc
from apps.market import conf
from apps.market.models import (
    ClearingResult,
    MarketSettings,
    Order,
    SettlementRun,
    Statement,
    Tariff,
    Trade,
    TradingPreference,
)


def market_settings_get() -> MarketSettings:
    obj, _ = MarketSettings.objects.get_or_create(pk=1)
    return obj


def tariff_at(*, at: datetime) -> Tariff:
    """The tariff version valid at `at` ([valid_from, valid_to))."""
    tariff = (
        Tariff.objects.filter(valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .order_by("-valid_from")
        .first()
    )
    if tariff is None:
        raise ApplicationError("No tariff is valid at this time.", {"at": at.isoformat()})
    return tariff


def gate_closure(*, interval_start: datetime) -> datetime:
    return ensure_utc(interval_start) - timedelta(
        minutes=market_settings_get().gate_closure_minutes
    )


def period_bounds(*, at: datetime) -> tuple[datetime, datetime]:
    """The settlement batch containing `at` (MARKET_SETTLEMENT_PERIOD_MINUTES, aligned to UTC)."""
    length = int(conf.get("MARKET_SETTLEMENT_PERIOD_MINUTES")) * 60
    epoch = int(ensure_utc(at).timestamp())
    start = datetime.fromtimestamp(epoch - epoch % length, tz=ensure_utc(at).tzinfo)
    return start, start + timedelta(seconds=length)


def preference_for(*, member) -> TradingPreference | None:
    return (
        TradingPreference.objects.filter(member=member)
        .prefetch_related("preferred_partners")
        .first()
    )


def member_orders(*, member, since: datetime | None = None, limit: int = 200) -> list[Order]:
    qs = Order.objects.filter(member=member)
    if since is not None:
        qs = qs.filter(interval_start__gte=since)
    return list(qs.order_by("-interval_start", "-id")[:limit])


def member_order_get(*, member, order_id: int) -> Order:
    order = Order.objects.filter(member=member, pk=order_id).first()
    if order is None:
        raise Http404("No such order.")
    return order


def member_trades(*, member, since: datetime | None = None, limit: int = 200) -> list[Trade]:
    qs = Trade.objects.filter(Q(seller=member) | Q(buyer=member)).select_related(
        "seller", "buyer", "clearing__run"
    )
    if since is not None:
        qs = qs.filter(interval_start__gte=since)
    return list(qs.order_by("-interval_start", "-id")[:limit])


def member_trade_get(*, member, trade_id: int) -> Trade:
    trade = (
        Trade.objects.filter(Q(seller=member) | Q(buyer=member), pk=trade_id)
        .select_related("clearing__run", "seller", "buyer")
        .first()
    )
    if trade is None:
        raise Http404("No such trade.")
    return trade


def member_statements(*, member) -> list[Statement]:
    return list(
        Statement.objects.filter(member=member, status=Statement.Status.ISSUED).order_by("-month")
    )


def member_statement_get(*, member, statement_id: int) -> Statement:
    """An issued statement of this member, or 404 (drafts are for staff until issued)."""
    statement = Statement.objects.filter(
        member=member, pk=statement_id, status=Statement.Status.ISSUED
    ).first()
    if statement is None:
        raise Http404("No such statement.")
    return statement


@dataclass(frozen=True, slots=True)
class SettledTrade:
    """A trade of a settled run, for the incentives app (certificates move seller → buyer)."""

    id: int
    seller_id: int
    buyer_id: int
    interval_start: datetime
    delivered_wh: int
    from_seller_wh: int


def settled_trades(*, settlement_run: SettlementRun) -> list[SettledTrade]:
    """Every trade of a settled (or anchored) run, in id order. Empty for unsettled runs."""
    run_id = getattr(settlement_run, "pk", settlement_run)
    rows = (
        Trade.objects.filter(
            clearing__run_id=run_id,
            clearing__run__status__in=[SettlementRun.Status.SETTLED, SettlementRun.Status.ANCHORED],
        )
        .order_by("id")
        .values_list(
            "id", "seller_id", "buyer_id", "interval_start", "wh_delivered", "wh_from_seller"
        )
    )
    return [SettledTrade(*row) for row in rows]


def clearing_history(*, since: datetime, until: datetime) -> list[ClearingResult]:
    return list(
        ClearingResult.objects.filter(interval_start__gte=since, interval_start__lt=until).order_by(
            "interval_start"
        )
    )


def order_book_depth(*, interval_start: datetime) -> dict[str, list[dict]]:
    """Aggregated open (or cleared) orders of one interval by price level: the order book depth."""
    rows = (
        Order.objects.filter(interval_start=interval_start)
        .exclude(status=Order.Status.CANCELLED)
        .values("side", "limit_price")
        .annotate(wh=Sum("wh"), orders=Count("id"))
        .order_by("side", "limit_price")
    )
    book: dict[str, list[dict]] = {"bid": [], "offer": []}
    for row in rows:
        book[row["side"]].append(
            {"price": row["limit_price"], "wh": int(row["wh"]), "orders": row["orders"]}
        )
    book["bid"].reverse()
    return book


def market_monitor(*, now: datetime, hours: int = 24) -> dict:
    since = now - timedelta(hours=hours)
    results = clearing_history(since=since, until=now + INTERVAL * 8)
    upcoming = ensure_utc(now)
    upcoming = upcoming - timedelta(
        minutes=upcoming.minute % 15, seconds=upcoming.second, microseconds=upcoming.microsecond
    )
    upcoming += INTERVAL
    return {
        "results": results,
        "chart": {
            "labels": [r.interval_start.isoformat() for r in results],
            "price": [float(r.price) if r.price is not None else None for r in results],
            "traded_wh": [r.traded_wh for r in results],
            "curtailed_wh": [r.curtailed_wh for r in results],
        },
        "totals": {
            "traded_wh": sum(r.traded_wh for r in results),
            "curtailed_wh": sum(r.curtailed_wh for r in results),
            "loss_wh": sum(r.loss_wh for r in results),
        },
        "next_interval": upcoming,
        "book": order_book_depth(interval_start=upcoming),
    }


def member_savings(*, member, since: datetime) -> dict[str, Decimal]:
    """Money saved against grid-only prices on settled lines since `since` (excl. VAT)."""
    from apps.market.models import SettlementLine

    agg = SettlementLine.objects.filter(member=member, interval_start__gte=since).aggregate(
        *[Sum(f) for f in SettlementLine.AMOUNT_FIELDS],
        grid_only=Sum("grid_only_charge"),
        grid_only_credit=Sum("grid_only_credit"),
    )
    paid = sum((agg[f"{f}__sum"] or Decimal(0) for f in SettlementLine.AMOUNT_FIELDS), Decimal(0))
    grid_only = (agg["grid_only"] or Decimal(0)) + (agg["grid_only_credit"] or Decimal(0))
    return {"paid": paid, "grid_only": grid_only, "saved": grid_only - paid}
