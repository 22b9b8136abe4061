"""Staff administration of the market: tariffs, settings, runs (approve-and-anchor) and statement
review/issue. Admin actions only call services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from apps.accounts.policy import PolicyModelAdmin
from apps.core.exceptions import ApplicationError
from apps.market import services
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


def _run_each(modeladmin, request, queryset, fn, done: str) -> None:
    ok = 0
    for obj in queryset:
        try:
            fn(obj)
            ok += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
    if ok:
        modeladmin.message_user(request, f"{ok} {done}.", messages.SUCCESS)


@admin.register(MarketSettings)
class MarketSettingsAdmin(PolicyModelAdmin):
    date_hierarchy = "updated_at"
    list_display = ["mechanism", "gate_closure_minutes", "capacity_share", "updated_at"]


@admin.register(Tariff)
class TariffAdmin(PolicyModelAdmin):
    date_hierarchy = "valid_from"
    list_display = ["name", "valid_from", "valid_to", "retail_price", "feed_in_price", "vat_rate"]


@admin.register(TradingPreference)
class TradingPreferenceAdmin(PolicyModelAdmin):
    date_hierarchy = "updated_at"
    list_display = ["member", "auto_trade", "max_buy_price", "min_sell_price", "green_only"]
    raw_id_fields = ["member", "preferred_partners"]

    def has_change_permission(self, request, obj=None):
        return False  # members change their preferences through the portal/API (validated)


@admin.register(Order)
class OrderAdmin(PolicyModelAdmin):
    autocomplete_fields = ("member",)
    list_display = ["interval_start", "member", "side", "wh", "limit_price", "origin", "status"]
    list_filter = ["side", "origin", "status"]
    date_hierarchy = "interval_start"

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(ClearingResult)
class ClearingResultAdmin(PolicyModelAdmin):
    raw_id_fields = ("run", "tariff")
    service_owned = True  # written only by clearing/settlement services (audited)
    list_display = [
        "interval_start",
        "mechanism",
        "price",
        "bid_wh",
        "offer_wh",
        "traded_wh",
        "curtailed_wh",
        "duration_ms",
    ]
    date_hierarchy = "interval_start"

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Trade)
class TradeAdmin(PolicyModelAdmin):
    date_hierarchy = "interval_start"
    raw_id_fields = ("clearing", "seller", "buyer", "seller_order", "buyer_order")
    service_owned = True  # written only by clearing/settlement services (audited)
    list_display = ["id", "interval_start", "seller", "buyer", "distance", "wh_delivered", "price"]
    list_filter = ["distance"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SettlementRun)
class SettlementRunAdmin(PolicyModelAdmin):
    date_hierarchy = "period_start"
    list_display = [
        "id",
        "period_start",
        "status",
        "trade_count",
        "members_pay",
        "members_receive",
        "grid_import_cost",
        "grid_export_revenue",
        "network_fees",
        "chain_intent_id",
    ]
    list_filter = ["status"]
    actions = ["approve_and_anchor"]
    readonly_fields = [f.name for f in SettlementRun._meta.fields]

    @admin.action(description="Approve and anchor on chain (settled runs)")
    def approve_and_anchor(self, request, queryset):
        """Asks first: the confirmation page lists the runs with their totals; only the
        confirming POST (``confirm=yes``) approves. Runs not settled are listed as refused."""
        if request.POST.get("confirm") != "yes":
            runs = list(queryset.order_by("period_start"))
            return TemplateResponse(
                request,
                "admin/market/settlementrun/approve_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Approve and anchor settlement runs?",
                    "opts": self.model._meta,
                    "runs": runs,
                    "approvable": [r for r in runs if r.status == SettlementRun.Status.SETTLED],
                    "action_name": "approve_and_anchor",
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        _run_each(
            self,
            request,
            queryset,
            lambda run: services.settlement_run_anchor(run=run, actor=request.user),
            "settlement runs queued for anchoring",
        )


@admin.register(SettlementLine)
class SettlementLineAdmin(PolicyModelAdmin):
    date_hierarchy = "interval_start"
    raw_id_fields = ("run", "member", "statement")
    service_owned = True  # written only by clearing/settlement services (audited)
    list_display = [
        "interval_start",
        "member",
        "is_adjustment",
        "bought_wh",
        "sold_wh",
        "statement",
    ]
    list_filter = ["is_adjustment"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Statement)
class StatementAdmin(PolicyModelAdmin):
    list_display = ["number", "member", "month", "status", "issued_at"]
    list_filter = ["status", "month"]
    actions = ["review", "issue", "regenerate"]
    readonly_fields = [f.name for f in Statement._meta.fields]

    @admin.action(description="Mark reviewed")
    def review(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            lambda s: services.statement_review(statement=s, actor=request.user),
            "statements reviewed",
        )

    @admin.action(description="Issue (final; reviewed statements only)")
    def issue(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            lambda s: services.statement_issue(statement=s, actor=request.user),
            "statements issued",
        )

    @admin.action(description="Regenerate draft from settlement lines")
    def regenerate(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            lambda s: services.statement_generate(
                member=s.member, month=s.month, actor=request.user
            ),
            "statements regenerated",
        )
