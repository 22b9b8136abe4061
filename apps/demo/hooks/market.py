"""Demo data of the market (called by the demo loader, see docs/demo.md): a tariff, market
settings, standing preferences for every demo member, and a real market over the 24 hours up to
the last complete interval — cleared interval by interval, yesterday's period (UTC) settled from
the demo's metered history — so the trading page has trades and prices for the last 24 hours at
any time of day, and the staff monitor and the settlement runs show real figures; the beat
clears the intervals after that. Idempotent."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from apps.core.intervals import iter_intervals
from apps.market import services
from apps.market.models import ClearingResult, MarketSettings, Statement, Tariff, TradingPreference
from apps.market.selectors import period_bounds

logger = logging.getLogger(__name__)
SHOWCASE_MAX_BUY = Decimal("0.30")
MARKET_WINDOW = timedelta(hours=24)


def _tariff() -> Tariff:
    tariff = Tariff.objects.order_by("valid_from").first()
    if tariff is None:
        tariff = Tariff.objects.create(
            name="Cooperative tariff 2024",
            valid_from=datetime(2024, 1, 1, tzinfo=UTC),
            retail_price=Decimal("0.3200"),
            feed_in_price=Decimal("0.0800"),
        )
    return tariff


def load(context) -> None:
    MarketSettings.objects.get_or_create(pk=1)
    _tariff()
    have = set(TradingPreference.objects.values_list("member_id", flat=True))
    pv = {m.pk for m in context.members_with("pv")}
    created = 0
    for i, member in enumerate(context.members):
        if member.pk in have or not member.is_active_member:
            continue
        created += 1
        # The showcase member bids highest, so the little winter supply reaches them first and
        # their trading page shows trades (others bid 0.22–0.28).
        showcase = member.pk == context.showcase_member.pk
        services.preference_update(
            member=member,
            actor="demo",
            max_buy_price=SHOWCASE_MAX_BUY if showcase else Decimal("0.22") + Decimal(i % 7) / 100,
            min_sell_price=Decimal("0.09") + Decimal(i % 5) / 100,
            green_only=(i % 11 == 3 and bool(pv)),
            battery_reserve_percent=20 if "battery" in context.spec_for(member).assets else 0,
            partner_selectable=i % 3 == 0,  # a third of the demo members can be chosen
            now=context.now,
        )
    if created:
        context.created["market.tradingpreference"] = created
    # The market of the last 24 hours up to now, if the history covers the day before it (the
    # orders' seasonal-naive forecast); yesterday's period (UTC) is then settled.
    day_end, _ = period_bounds(at=context.now)
    day_start, _ = period_bounds(at=day_end - timedelta(minutes=1))
    window_start = context.now - MARKET_WINDOW
    if window_start - timedelta(days=1) < context.history_start:
        return
    done = set(
        ClearingResult.objects.filter(
            interval_start__gte=window_start, interval_start__lt=context.now
        ).values_list("interval_start", flat=True)
    )
    cleared = 0
    for start in iter_intervals(window_start, context.now):
        if start in done:
            continue
        services.orders_generate(interval_start=start, now=start - timedelta(minutes=30))
        services.interval_clear(interval_start=start, now=start)
        cleared += 1
    if cleared:
        context.created["market.clearingresult"] = cleared
    services.settlement_runs_process(now=max(context.now, day_end + timedelta(hours=1)))
    # Draft statements of that month for staff to review; the showcase member's is issued.
    month = day_start.date().replace(day=1)
    for member in context.members:
        existing = Statement.objects.filter(member=member, month=month).first()
        if existing is not None and existing.status == Statement.Status.ISSUED:
            continue
        statement = services.statement_generate(member=member, month=month, now=context.now)
        if member.pk == context.showcase_member.pk:
            services.statement_review(statement=statement, actor=context.staff_user)
            services.statement_issue(statement=statement, actor=context.staff_user)
