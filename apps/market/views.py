"""Portal pages of the market. Members see only their own orders, trades and statements
(selectors filter by the logged-in member; anything else is 404). Staff pages go through the
permission policy (apps.accounts.policy)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.policy import portal_view, staff_view
from apps.accounts.selectors import member_for_user
from apps.core.exceptions import ApplicationError
from apps.core.intervals import INTERVAL, floor_interval
from apps.core.replica import replica_reads
from apps.market import selectors, services
from apps.market.forms import OrderForm, PreferenceForm, apply_errors
from apps.market.models import Order, SettlementRun


def _upcoming(now, count: int = 8, settings=None):
    """The next `count` intervals still open for orders (gate closure from one settings read)."""
    start = floor_interval(now) + INTERVAL
    settings = settings or selectors.market_settings_get()
    lead = timedelta(minutes=settings.gate_closure_minutes)
    out = []
    for k in range(count + 2):
        t = start + INTERVAL * k
        if now < t - lead:
            out.append(t)
    return out[:count]


def _trading_context(request, member, *, pref_form=None, order_form=None):
    now = timezone.now()
    pref = selectors.preference_for(member=member)
    if pref_form is None:
        initial = {}
        if pref is not None:
            initial = {
                "max_buy_price": pref.max_buy_price,
                "min_sell_price": pref.min_sell_price,
                "green_only": pref.green_only,
                "preferred_partners": list(pref.preferred_partners.all()),
                "battery_reserve_percent": pref.battery_reserve_percent,
                "auto_trade": pref.auto_trade,
                "partner_selectable": pref.partner_selectable,
            }
        pref_form = PreferenceForm(initial=initial, member=member)
    settings = selectors.market_settings_get()
    upcoming = _upcoming(now, settings=settings)
    if order_form is None:
        order_form = OrderForm(intervals=upcoming)
    orders = {
        o.interval_start: o
        for o in Order.objects.filter(
            member=member, interval_start__in=upcoming, status=Order.Status.OPEN
        )
    }
    history = selectors.clearing_history(since=now - timedelta(hours=24), until=now)
    return {
        "member": member,
        "pref_form": pref_form,
        "order_form": order_form,
        "upcoming": [(t, orders.get(t)) for t in upcoming],
        "trades": selectors.member_trades(member=member, limit=20),
        "chart": {
            "labels": [c.interval_start.isoformat() for c in history],
            "price": [float(c.price) if c.price is not None else None for c in history],
            "traded_kwh": [c.traded_wh / 1000 for c in history],
        },
        "savings": selectors.member_savings(member=member, since=now - timedelta(days=30)),
        "settings": settings,
    }


@portal_view
def trading(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    pref_form = None
    if request.method == "POST":
        pref_form = PreferenceForm(request.POST, member=member)
        if pref_form.is_valid():
            data = pref_form.cleaned_data
            try:
                services.preference_update(
                    member=member,
                    actor=request.user,
                    max_buy_price=data["max_buy_price"],
                    min_sell_price=data["min_sell_price"],
                    green_only=data["green_only"],
                    preferred_partner_ids=[p.pk for p in data["preferred_partners"]],
                    battery_reserve_percent=data["battery_reserve_percent"],
                    auto_trade=data["auto_trade"],
                    partner_selectable=data["partner_selectable"],
                )
            except ApplicationError as exc:
                apply_errors(pref_form, exc)
            else:
                messages.success(request, "Your trading preferences are saved.")
                return redirect("market:trading")
    context = _trading_context(request, member, pref_form=pref_form)
    status = 400 if pref_form is not None and pref_form.errors else 200
    return render(request, "market/trading.html", context, status=status)


@portal_view
@require_POST
def order_create(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    form = OrderForm(request.POST, intervals=_upcoming(timezone.now()))
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.order_place(
                member=member,
                actor=request.user,
                interval_start=data["interval_start"],
                side=data["side"],
                wh=data["wh"],
                limit_price=data["limit_price"],
                green=data["green"],
            )
        except ApplicationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Your order is placed.")
            return redirect("market:trading")
    context = _trading_context(request, member, order_form=form)
    return render(request, "market/trading.html", context, status=400)


@portal_view
def trade_verify(request: HttpRequest, trade_id: int) -> HttpResponse:
    member = member_for_user(request.user)
    trade = selectors.member_trade_get(member=member, trade_id=trade_id)
    proof = on_chain = error = None
    try:
        proof = services.trade_proof(trade=trade)
        on_chain = services.trade_verify_on_chain(proof=proof)
    except ApplicationError as exc:
        error = exc.message
    return render(
        request,
        "market/trade_verify.html",
        {"trade": trade, "proof": proof, "on_chain": on_chain, "error": error},
    )


@portal_view
def statements(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    # Statements are written by settlement, never by the member (apps/core/replica.py); the
    # page is rendered inside the block because the queryset is read while rendering.
    with replica_reads():
        return render(
            request,
            "market/statements.html",
            {"statements": selectors.member_statements(member=member)},
        )


@portal_view
def statement_detail(request: HttpRequest, pk: int) -> HttpResponse:
    member = member_for_user(request.user)
    statement = selectors.member_statement_get(member=member, statement_id=pk)
    from apps.market.services.statements import statement_context

    return render(request, "market/statement_detail.html", statement_context(statement=statement))


@portal_view
def statement_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    member = member_for_user(request.user)
    statement = selectors.member_statement_get(member=member, statement_id=pk)
    response = HttpResponse(services.statement_pdf(statement=statement), "application/pdf")
    response["Content-Disposition"] = f'attachment; filename="statement-{statement.number}.pdf"'
    return response


@portal_view
def statement_csv(request: HttpRequest, pk: int) -> HttpResponse:
    member = member_for_user(request.user)
    statement = selectors.member_statement_get(member=member, statement_id=pk)
    response = HttpResponse(services.statement_csv(statement=statement), "text/csv")
    response["Content-Disposition"] = f'attachment; filename="statement-{statement.number}.csv"'
    return response


# --- staff ------------------------------------------------------------------------------------


@staff_view
def monitor(request: HttpRequest) -> HttpResponse:
    data = selectors.market_monitor(now=timezone.now())
    return render(request, "market/monitor.html", data)


@staff_view
def runs(request: HttpRequest) -> HttpResponse:
    from apps.chain.models import ChainIntent

    rows = list(SettlementRun.objects.order_by("-period_start")[:60])
    intents = ChainIntent.objects.in_bulk([r.chain_intent_id for r in rows if r.chain_intent_id])
    return render(
        request,
        "market/runs.html",
        {"runs": [(r, intents.get(r.chain_intent_id)) for r in rows]},
    )


@staff_view
@require_POST
def run_anchor(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(SettlementRun, pk=pk)
    try:
        services.settlement_run_anchor(run=run, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Settlement {run.pk} approved and queued for anchoring.")
    return redirect("market:runs")
