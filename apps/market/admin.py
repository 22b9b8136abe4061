"""Staff administration of the market: tariffs, settings, runs (approve-and-anchor) and statement
review/issue. Admin actions only call services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from import_export import fields, resources

from apps.accounts.policy import PolicyImportMixin, PolicyModelAdmin
from apps.core.exceptions import ApplicationError
from apps.core.import_widgets import ExactDecimalWidget, IsoDateTimeWidget
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


class TariffImportResource(resources.ModelResource):
    """Tariff versions from CSV/XLSX, each created by `services.tariff_create` (validity may not
    overlap, retail above feed-in, audited). Existing versions are never changed by import."""

    valid_from = fields.Field("valid_from", "valid_from", widget=IsoDateTimeWidget())
    valid_to = fields.Field("valid_to", "valid_to", widget=IsoDateTimeWidget())
    retail_price = fields.Field("retail_price", "retail_price", widget=ExactDecimalWidget())
    feed_in_price = fields.Field("feed_in_price", "feed_in_price", widget=ExactDecimalWidget())
    vat_rate = fields.Field("vat_rate", "vat_rate", widget=ExactDecimalWidget())

    REQUIRED = ("name", "valid_from", "retail_price", "feed_in_price")

    class Meta:
        model = Tariff
        fields = ("name", "valid_from", "valid_to", "retail_price", "feed_in_price", "vat_rate")
        import_id_fields = ()
        clean_model_instances = False
        skip_unchanged = False
        use_bulk = False

    def get_instance(self, instance_loader: Any, row: Any) -> None:
        return None  # every row is a new version

    def import_field(self, field: Any, instance: Any, row: Any, is_m2m: bool = False, **kw: Any):
        if field.column_name in self.REQUIRED and row.get(field.column_name) in (None, ""):
            raise ValueError(f"The column {field.column_name} is required.")
        return super().import_field(field, instance, row, is_m2m, **kw)

    def import_data(self, dataset: Any, **kwargs: Any) -> Any:
        self._actor = kwargs.get("user")
        return super().import_data(dataset, **kwargs)

    def do_instance_save(self, instance: Tariff, is_create: bool) -> None:
        try:
            saved = services.tariff_create(
                name=instance.name,
                valid_from=instance.valid_from,
                valid_to=instance.valid_to,
                retail_price=instance.retail_price,
                feed_in_price=instance.feed_in_price,
                vat_rate=instance.vat_rate if instance.vat_rate is not None else Decimal("0.19"),
                actor=self._actor,
            )
        except ApplicationError as exc:
            field = next(iter(exc.extra), "name")
            raise ValidationError({field: exc.message}) from exc
        instance.pk = saved.pk


@admin.register(Tariff)
class TariffAdmin(PolicyImportMixin, PolicyModelAdmin):
    resource_classes = [TariffImportResource]
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
    raw_id_fields = ("run", "member", "statement", "chain_run")
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
