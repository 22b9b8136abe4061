"""Reads of the market app. Members only ever see their own orders, trades and statements:
selectors that take a `member` filter by it and raise Http404 for anything else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.http import Http404

from apps.accounts.models import Member
from apps.core.exceptions import ApplicationError
from apps.core.intervals import INTERVAL, ensure_utc
from apps.market import conf
from apps.market.models import (
    ClearingResult,
    MarketSettings,
    Order,
    SettlementLine,
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
    rows = (
        Trade.objects.filter(
            clearing__run_id=settlement_run.pk,
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
    agg = SettlementLine.objects.filter(member=member, interval_start__gte=since).aggregate(
        *[Sum(f) for f in SettlementLine.AMOUNT_FIELDS],
        grid_only=Sum("grid_only_charge"),
        grid_only_credit=Sum("grid_only_credit"),
    )
    paid = sum((agg[f"{f}__sum"] or Decimal(0) for f in SettlementLine.AMOUNT_FIELDS), Decimal(0))
    grid_only = (agg["grid_only"] or Decimal(0)) + (agg["grid_only_credit"] or Decimal(0))
    return {"paid": paid, "grid_only": grid_only, "saved": grid_only - paid}


# --- reads for compliance (reports, data rights) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class RunReconciliation:
    """One settlement run with its trades and settlement lines summed (reconciliation report)."""

    run_id: int
    period_start: datetime
    period_end: datetime
    status: str
    trade_count: int
    traded_wh: int
    lines_bought_wh: int
    lines_sold_wh: int
    lines_net_amount: Decimal
    members_pay: Decimal
    members_receive: Decimal
    grid_import_cost: Decimal
    grid_export_revenue: Decimal
    network_fees: Decimal
    trades_root: str
    chain_intent_id: int | None


def settlement_runs_reconciliation(*, start: datetime, end: datetime) -> list[RunReconciliation]:
    """Runs whose period starts in [start, end), oldest first, each with its trades' delivered Wh
    and its lines' Wh and net amount (three queries)."""
    runs = list(
        SettlementRun.objects.filter(period_start__gte=start, period_start__lt=end).order_by(
            "period_start"
        )
    )
    if not runs:
        return []
    ids = [r.pk for r in runs]
    traded = dict(
        Trade.objects.filter(clearing__run_id__in=ids)
        .values("clearing__run_id")
        .annotate(wh=Sum("wh_delivered"))
        .values_list("clearing__run_id", "wh")
    )
    lines = {
        row["run_id"]: row
        for row in SettlementLine.objects.filter(run_id__in=ids)
        .values("run_id")
        .annotate(
            bought=Sum("bought_wh"),
            sold=Sum("sold_wh"),
            **{f: Sum(f) for f in SettlementLine.AMOUNT_FIELDS},
        )
    }
    out = []
    for run in runs:
        agg = lines.get(run.pk, {})
        out.append(
            RunReconciliation(
                run_id=run.pk,
                period_start=run.period_start,
                period_end=run.period_end,
                status=run.status,
                trade_count=run.trade_count,
                traded_wh=int(traded.get(run.pk) or 0),
                lines_bought_wh=int(agg.get("bought") or 0),
                lines_sold_wh=int(agg.get("sold") or 0),
                lines_net_amount=sum(
                    (agg.get(f) or Decimal(0) for f in SettlementLine.AMOUNT_FIELDS), Decimal(0)
                ),
                members_pay=run.members_pay,
                members_receive=run.members_receive,
                grid_import_cost=run.grid_import_cost,
                grid_export_revenue=run.grid_export_revenue,
                network_fees=run.network_fees,
                trades_root=run.trades_root,
                chain_intent_id=run.chain_intent_id,
            )
        )
    return out


def settlement_run_trades_root(*, run_id: int) -> str | None:
    """The trades Merkle root a run settled with ('' before settlement); None if no such run."""
    return SettlementRun.objects.filter(pk=run_id).values_list("trades_root", flat=True).first()


@dataclass(frozen=True, slots=True)
class OpenSettlements:
    """What keeps a member's market ledgers open: open orders, and trades and settlement lines
    in runs that are not settled yet."""

    open_orders: int
    unsettled_trades: int
    unsettled_lines: int


def member_open_settlements_count(*, member: Member) -> OpenSettlements:
    """Counts of the member's open orders and unsettled trades and lines (three queries)."""
    closed = [SettlementRun.Status.SETTLED, SettlementRun.Status.ANCHORED]
    return OpenSettlements(
        open_orders=Order.objects.filter(member=member, status=Order.Status.OPEN).count(),
        unsettled_trades=Trade.objects.filter(Q(seller=member) | Q(buyer=member))
        .exclude(clearing__run__status__in=closed)
        .count(),
        unsettled_lines=SettlementLine.objects.filter(member=member)
        .exclude(run__status__in=closed)
        .count(),
    )


@dataclass(frozen=True, slots=True)
class MemberTradeRow:
    """One of a member's trades from the member's side (data export)."""

    id: int
    interval_start: datetime
    side: str  # "sell" or "buy"
    counterparty_zone: str
    wh_delivered: int
    price: Decimal
    fee_per_kwh: Decimal


def member_trade_rows(*, member: Member) -> list[MemberTradeRow]:
    """Every trade the member sold or bought in, by interval and id (one query)."""
    rows = (
        Trade.objects.filter(Q(seller=member) | Q(buyer=member))
        .order_by("interval_start", "id")
        .values_list(
            "id", "interval_start", "seller_id", "seller_zone", "buyer_zone", "wh_delivered",
            "price", "fee_per_kwh",
        )
    )  # fmt: skip
    return [
        MemberTradeRow(
            id=pk,
            interval_start=start,
            side="sell" if seller_id == member.pk else "buy",
            counterparty_zone=buyer_zone if seller_id == member.pk else seller_zone,
            wh_delivered=wh,
            price=price,
            fee_per_kwh=fee,
        )
        for pk, start, seller_id, seller_zone, buyer_zone, wh, price, fee in rows
    ]


@dataclass(frozen=True, slots=True)
class MemberStatementRow:
    """One of a member's statements, drafts included (data export)."""

    number: str
    month: date
    status: str
    totals: dict[str, Any]


def member_statement_rows(*, member: Member) -> list[MemberStatementRow]:
    """Every statement of the member, drafts included, by month (one query)."""
    rows = (
        Statement.objects.filter(member=member)
        .order_by("month")
        .values_list("number", "month", "status", "totals")
    )
    return [MemberStatementRow(*row) for row in rows]


SETTLEMENT_LINE_EXPORT_FIELDS: tuple[str, ...] = (
    "interval_start",
    "is_adjustment",
    "reason",
    *SettlementLine.ENERGY_FIELDS,
    *SettlementLine.AMOUNT_FIELDS,
)


def member_settlement_line_values(*, member: Member) -> list[tuple[Any, ...]]:
    """The member's settlement lines as tuples of SETTLEMENT_LINE_EXPORT_FIELDS, by interval and
    id (one query)."""
    return list(
        SettlementLine.objects.filter(member=member)
        .order_by("interval_start", "id")
        .values_list(*SETTLEMENT_LINE_EXPORT_FIELDS)
    )


@dataclass(frozen=True)
class SettledOutput:
    """A member's settled position over a period: metered export and the net money settled
    (positive: the member was credited — P2P sales and export at the settled prices, less any
    purchases, fees and grid import)."""

    export_wh: int
    import_wh: int
    revenue: Decimal


def member_settled_output(*, member_id: int, start: datetime, end: datetime) -> SettledOutput:
    """Sums of the member's settlement lines (regular and adjustments) with intervals in
    [start, end) — e.g. the settlement account of a shared plant (one query)."""
    row = SettlementLine.objects.filter(
        member_id=member_id, interval_start__gte=start, interval_start__lt=end
    ).aggregate(
        export_wh=Sum("export_wh"),
        import_wh=Sum("import_wh"),
        pay=Sum(F("p2p_purchase") + F("network_fee") + F("grid_import")),
        receive=Sum(F("p2p_sale") + F("grid_export")),
    )
    return SettledOutput(
        export_wh=int(row["export_wh"] or 0),
        import_wh=int(row["import_wh"] or 0),
        revenue=-((row["pay"] or Decimal(0)) + (row["receive"] or Decimal(0))),
    )


def settlement_runs_unsettled_count(*, start: datetime, end: datetime) -> int:
    """Settlement runs overlapping [start, end) that are not settled (or anchored) yet."""
    return (
        SettlementRun.objects.filter(period_start__lt=end, period_end__gt=start)
        .exclude(status__in=[SettlementRun.Status.SETTLED, SettlementRun.Status.ANCHORED])
        .count()
    )


def selectable_partners(*, member: Member) -> QuerySet[Member]:
    """Members the given member may choose as preferred partners: active members who opted in
    (`TradingPreference.partner_selectable`), not the member themselves; by membership number."""
    return (
        Member.objects.filter(
            status=Member.Status.ACTIVE, trading_preference__partner_selectable=True
        )
        .exclude(pk=member.pk)
        .order_by("membership_number")
    )


@dataclass(frozen=True, slots=True)
class StatementEnergy:
    """A statement's settled energy and amounts of one month, for billing. Adjustment lines
    (corrections of earlier months) come per month of the interval they correct."""

    month: date
    is_adjustment: bool
    grid_import_wh: int
    grid_export_wh: int
    bought_wh: int
    sold_wh: int
    p2p_purchase: Decimal
    p2p_sale: Decimal
    network_fee: Decimal


def _statement_energy_rows(statement_ids: list[int]) -> QuerySet:
    return (
        SettlementLine.objects.filter(statement_id__in=statement_ids)
        .annotate(
            month=TruncMonth("interval_start", tzinfo=ZoneInfo(settings.COOPERATIVE_TIME_ZONE))
        )
        .values("statement_id", "is_adjustment", "month")
        .annotate(
            grid_import_wh=Sum("grid_import_wh"),
            grid_export_wh=Sum("grid_export_wh"),
            bought_wh=Sum("bought_wh"),
            sold_wh=Sum("sold_wh"),
            p2p_purchase=Sum("p2p_purchase"),
            p2p_sale=Sum("p2p_sale"),
            network_fee=Sum("network_fee"),
        )
        .order_by("statement_id", "is_adjustment", "month")
    )


def _statement_energy(r: dict[str, Any]) -> StatementEnergy:
    return StatementEnergy(
        month=r["month"].date(),
        is_adjustment=r["is_adjustment"],
        grid_import_wh=int(r["grid_import_wh"]),
        grid_export_wh=int(r["grid_export_wh"]),
        bought_wh=int(r["bought_wh"]),
        sold_wh=int(r["sold_wh"]),
        p2p_purchase=r["p2p_purchase"],
        p2p_sale=r["p2p_sale"],
        network_fee=r["network_fee"],
    )


def statement_energy(*, statement: Statement) -> list[StatementEnergy]:
    """The statement's lines summed per (adjustment or not, month of the interval)."""
    return [_statement_energy(r) for r in _statement_energy_rows([statement.pk])]


def statements_energy(*, statement_ids: list[int]) -> dict[int, list[StatementEnergy]]:
    """`statement_energy` of many statements in one query: {statement id: rows} (statements
    without lines are absent)."""
    out: dict[int, list[StatementEnergy]] = {}
    for r in _statement_energy_rows(statement_ids):
        out.setdefault(r["statement_id"], []).append(_statement_energy(r))
    return out


def members_with_lines_for_month(*, month: date, end: datetime) -> set[int]:
    """Members whose settlement lines a statement of `month` (ending at `end`) would carry:
    lines on that month's statements, and lines before `end` on no statement yet."""
    on_month = SettlementLine.objects.filter(statement__month=month.replace(day=1))
    loose = SettlementLine.objects.filter(statement__isnull=True, interval_start__lt=end)
    # order_by(): the model's ordering would make DISTINCT run over (member, interval, id).
    ids = set(on_month.order_by().values_list("member_id", flat=True).distinct())
    ids |= set(loose.order_by().values_list("member_id", flat=True).distinct())
    return ids


def member_statement_for_month(*, member, month: date) -> Statement | None:
    return Statement.objects.filter(member=member, month=month.replace(day=1)).first()


@dataclass(frozen=True, slots=True)
class BatchLines:
    """A member's settlement lines of one netted on-chain batch (`batch` = the run whose
    `settlement_apply` carries them: the line's own run, or for an adjustment its `chain_run`,
    None while no batch has carried it yet), split by whether the given statements carry them."""

    member_id: int
    batch: int | None
    on_statements: bool
    lines: int
    adjustments: int
    p2p: Decimal  # p2p_purchase + p2p_sale + network_fee
    grid: Decimal  # grid_import + grid_export (settled at market prices, netted on chain)


def batch_lines(*, statement_ids: list[int]) -> list[BatchLines]:
    """The lines on these statements by member and batch, and every other line of the same
    members in the same batches (two queries)."""
    from django.db.models import Case, F, IntegerField, When

    batch = Case(
        When(is_adjustment=False, then=F("run_id")),
        default=F("chain_run_id"),
        output_field=IntegerField(),
    )
    sums = {
        "lines": Count("id"),
        "adjustments": Count("id", filter=Q(is_adjustment=True)),
        "p2p": Sum(F("p2p_purchase") + F("p2p_sale") + F("network_fee")),
        "grid": Sum(F("grid_import") + F("grid_export")),
    }
    own = list(
        SettlementLine.objects.filter(statement_id__in=statement_ids)
        .annotate(batch=batch)
        .values("member_id", "batch")
        .annotate(**sums)
        .order_by("member_id", "batch")
    )
    out = [BatchLines(on_statements=True, **row) for row in own]
    runs = {row["batch"] for row in own if row["batch"] is not None}
    members = {row["member_id"] for row in own}
    if runs:
        others = (
            SettlementLine.objects.filter(member_id__in=members)
            .filter(
                Q(is_adjustment=False, run_id__in=runs)
                | Q(is_adjustment=True, chain_run_id__in=runs)
            )
            .exclude(statement_id__in=statement_ids)
            .annotate(batch=batch)
            .values("member_id", "batch")
            .annotate(**sums)
            .order_by("member_id", "batch")
        )
        out += [BatchLines(on_statements=False, **row) for row in others]
    return out


@dataclass(frozen=True, slots=True)
class SettlementBatch:
    """What a run's netted batch sent on chain (recorded when it was anchored)."""

    run_id: int
    status: str
    trades_root: str
    chain_intent_id: int | None
    deltas: dict[int, dict[str, Any]]  # member id → {"address", "delta_minor", "adjustments"}


def settlement_batches(*, run_ids: list[int]) -> dict[int, SettlementBatch]:
    """The runs' batches as anchored (one query)."""
    return {
        r.pk: SettlementBatch(
            r.pk,
            r.status,
            r.trades_root,
            r.chain_intent_id,
            {int(k): v for k, v in (r.chain_deltas or {}).items()},
        )
        for r in SettlementRun.objects.filter(pk__in=run_ids)
    }


def minor_units() -> int:
    """Minor currency units per unit on chain (MARKET_MINOR_UNITS, e.g. 100 cents)."""
    return int(conf.get("MARKET_MINOR_UNITS"))


def staff_queue_counts() -> dict[str, int]:
    """The staff home's market work: settled runs awaiting approval (approve and anchor), draft
    statements to review and reviewed ones to issue."""
    runs = SettlementRun.objects.filter(status=SettlementRun.Status.SETTLED).count()
    statements = dict(
        Statement.objects.filter(status__in=[Statement.Status.DRAFT, Statement.Status.REVIEWED])
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        "settlement_runs_to_approve": runs,
        "statements_to_review": statements.get(Statement.Status.DRAFT, 0),
        "statements_to_issue": statements.get(Statement.Status.REVIEWED, 0),
    }
