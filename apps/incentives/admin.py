from django.contrib import admin

from apps.accounts.policy import PolicyInline, PolicyModelAdmin
from apps.incentives.models import (
    AssetShare,
    Certificate,
    CertificateTransfer,
    EmissionFactor,
    Reward,
    RewardRule,
    SharedAsset,
)


@admin.register(Certificate)
class CertificateAdmin(PolicyModelAdmin):
    list_display = ("id", "token_id", "range_start", "range_end", "status", "owner", "device",
                    "production_start", "beneficiary", "trade_ref")  # fmt: skip
    list_filter = ("status", "energy_source", "market_zone")
    search_fields = ("owner__membership_number", "device__serial", "beneficiary", "trade_ref")
    date_hierarchy = "production_start"
    list_select_related = ("owner", "device")
    # Certificates change only through services (issue/transfer/claim/cancel): history is kept.
    readonly_fields = [f.name for f in Certificate._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CertificateTransfer)
class CertificateTransferAdmin(PolicyModelAdmin):
    date_hierarchy = "hour_start"
    list_display = ("trade_ref", "seller", "buyer", "hour_start", "wh", "transferred_wh", "status")
    list_filter = ("status",)
    search_fields = ("trade_ref", "seller__membership_number", "buyer__membership_number")
    readonly_fields = [f.name for f in CertificateTransfer._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


class AssetShareInline(PolicyInline, admin.TabularInline):
    autocomplete_fields = ("member",)
    model = AssetShare
    extra = 0
    readonly_fields = ("carry", "revenue_carry")


@admin.register(SharedAsset)
class SharedAssetAdmin(PolicyModelAdmin):
    date_hierarchy = "created_at"
    autocomplete_fields = ("meter",)
    list_display = ("name", "meter", "mode", "support_received", "created_at")
    search_fields = ("name", "meter__serial")
    inlines = [AssetShareInline]

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        from apps.incentives.allocation import ShareTableError, validate_share_table

        shares = {s.member_id: s.share_ppm for s in form.instance.shares.all()}
        try:
            validate_share_table(shares)
        except ShareTableError as exc:
            self.message_user(request, f"Share table not usable yet: {exc}", level="error")


@admin.register(EmissionFactor)
class EmissionFactorAdmin(PolicyModelAdmin):
    date_hierarchy = "valid_from"
    list_display = ("market_zone", "basis", "valid_from", "valid_to", "g_co2e_per_kwh", "source")
    list_filter = ("market_zone", "basis")


@admin.register(RewardRule)
class RewardRuleAdmin(PolicyModelAdmin):
    date_hierarchy = "valid_from"
    list_display = ("kind", "tokens_per_kwh", "valid_from", "valid_to", "description")
    list_filter = ("kind",)


@admin.register(Reward)
class RewardAdmin(PolicyModelAdmin):
    date_hierarchy = "period_start"
    list_display = ("member", "kind", "period_ref", "basis_wh", "tokens", "chain_intent_ref",
                    "created_at")  # fmt: skip
    list_filter = ("kind",)
    search_fields = ("member__membership_number", "period_ref")
    readonly_fields = [f.name for f in Reward._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
