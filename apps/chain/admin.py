"""Admin: outbox monitor (with retry), contract registry per network, anchors, indexed events,
alerts on events nothing of ours explains (with acknowledge).

Everything is read-only (contracts replaced by an upgrade included): rows change only through
services (retry) and the worker.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from apps.accounts.policy import Capability, PolicyInline, PolicyModelAdmin, request_allows
from apps.chain.client import issuance_allowance, network_name
from apps.chain.models import (
    AnchoredReading,
    ChainAccount,
    ChainAlert,
    ChainEvent,
    ChainIntent,
    ContractDeployment,
    IndexerCursor,
    MeterAnchor,
    RetiredContract,
)
from apps.chain.services import chain_alerts_acknowledge, chain_intent_retry
from apps.core.exceptions import ApplicationError


class ReadOnlyAdmin(PolicyModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChainIntent)
class ChainIntentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "intent",
        "status_badge",
        "network",
        "short_hash",
        "nonce",
        "gas_used",
        "attempts",
        "short_error",
        "updated_at",
    )
    list_filter = ("status", "intent", "network")
    search_fields = ("idempotency_key", "tx_hash", "intent")
    readonly_fields = [f.name for f in ChainIntent._meta.fields] + ["tx_hashes"]
    actions = ["retry"]
    date_hierarchy = "created_at"

    _colours = {
        "pending": "#777",
        "signed": "#b58900",
        "sent": "#268bd2",
        "mined": "#2aa198",
        "confirmed": "#859900",
        "failed": "#dc322f",
    }

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: ChainIntent) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>',
            self._colours.get(obj.status, "#000"),
            obj.status,
        )

    @admin.display(description="tx hash")
    def short_hash(self, obj: ChainIntent) -> str:
        return f"{obj.tx_hash[:10]}…{obj.tx_hash[-6:]}" if obj.tx_hash else ""

    @admin.display(description="error")
    def short_error(self, obj: ChainIntent) -> str:
        return (obj.error[:80] + "…") if len(obj.error) > 80 else obj.error

    @admin.action(description="Retry the selected intents")
    def retry(self, request, queryset) -> None:
        done = 0
        for row in queryset.order_by("pk"):
            try:
                chain_intent_retry(intent_id=row.pk, actor=request.user)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"#{row.pk}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} intent(s) queued again.", messages.SUCCESS)

    def has_change_permission(self, request, obj=None) -> bool:
        # the retry action needs "change"; the form itself stays read-only (readonly_fields)
        return request_allows(request, Capability.STAFF_WRITE) and request.user.has_perm(
            "chain.change_chainintent"
        )


@admin.register(RetiredContract)
class RetiredContractAdmin(ReadOnlyAdmin):
    """Contracts replaced by `chain_deploy --upgrade`: where older roots, anchors and certificates
    are verified."""

    date_hierarchy = "retired_at"
    list_display = ("name", "network", "address", "replaced_by", "deployed_block", "retired_at")
    list_filter = ("network", "name")
    search_fields = ("name", "address", "replaced_by")


@admin.register(ContractDeployment)
class ContractDeploymentAdmin(ReadOnlyAdmin):
    date_hierarchy = "deployed_at"
    list_display = (
        "name",
        "network",
        "chain_id",
        "address",
        "block_number",
        "deployed_at",
        "issuance",
    )
    list_filter = ("network",)
    search_fields = ("name", "address")

    @admin.display(description="issuance cap this period")
    def issuance(self, obj: ContractDeployment) -> str:
        """Cap, use and headroom of the capped contracts, read from the chain."""
        if obj.network != network_name():
            return ""
        try:
            allowance = issuance_allowance(obj.name, obj.address)
        except Exception as exc:  # noqa: BLE001 - the registry still shows without the node
            return f"unavailable ({exc.__class__.__name__})"
        if allowance is None:
            return ""
        return (
            f"cap {allowance.cap:,} {allowance.unit} per {allowance.period_seconds:,} s; "
            f"used {allowance.used:,}; headroom {allowance.headroom:,}"
        )


class AnchoredReadingInline(PolicyInline, admin.TabularInline):
    model = AnchoredReading
    fields = ("index", "meter", "leaf")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


@admin.register(MeterAnchor)
class MeterAnchorAdmin(ReadOnlyAdmin):
    list_display = ("interval_start", "version", "leaf_count", "root", "intent_status", "tx")
    list_filter = ("intent__status",)
    date_hierarchy = "interval_start"
    exclude = ("leaves",)
    readonly_fields = ("interval_start", "interval_seconds", "version", "root", "leaf_count",
                       "intent", "created_at")  # fmt: skip
    list_select_related = ("intent",)

    @admin.display(description="intent")
    def intent_status(self, obj: MeterAnchor) -> str:
        return obj.intent.status

    @admin.display(description="tx hash")
    def tx(self, obj: MeterAnchor) -> str:
        return obj.intent.tx_hash


@admin.register(ChainEvent)
class ChainEventAdmin(ReadOnlyAdmin):
    date_hierarchy = "created_at"
    list_display = ("block_number", "log_index", "contract", "name", "tx_hash", "network")
    list_filter = ("contract", "name", "network")
    search_fields = ("tx_hash",)


@admin.register(ChainAccount)
class ChainAccountAdmin(ReadOnlyAdmin):
    date_hierarchy = "updated_at"
    list_display = ("address", "network", "next_nonce", "updated_at")


@admin.register(IndexerCursor)
class IndexerCursorAdmin(ReadOnlyAdmin):
    date_hierarchy = "updated_at"
    list_display = ("network", "last_block", "updated_at")


@admin.register(ChainAlert)
class ChainAlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "network", "message", "sender", "tx", "acknowledged_at")
    list_filter = (("acknowledged_at", admin.EmptyFieldListFilter), "network")
    readonly_fields = [f.name for f in ChainAlert._meta.fields]
    actions = ["acknowledge"]

    @admin.display(description="tx hash")
    def tx(self, obj: ChainAlert) -> str:
        return obj.event.tx_hash if obj.event_id else "—"

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request, queryset) -> None:
        done = chain_alerts_acknowledge(
            alert_ids=list(queryset.values_list("pk", flat=True)), actor=request.user
        )
        self.message_user(request, f"{done} alert(s) acknowledged.", messages.SUCCESS)

    def has_change_permission(self, request, obj=None) -> bool:
        # the acknowledge action needs "change"; the form itself stays read-only
        return request.user.is_staff
