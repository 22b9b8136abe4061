from django.contrib import admin, messages

from apps.billing.models import (
    BillingRun,
    Invoice,
    InvoiceLine,
    SupplyContract,
    SupplyTariff,
    SupplyTariffVersion,
)
from apps.billing.services import invoice_issue, invoice_review
from apps.core.exceptions import ApplicationError


class SupplyTariffVersionInline(admin.TabularInline):
    model = SupplyTariffVersion
    extra = 0


@admin.register(SupplyTariff)
class SupplyTariffAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    inlines = [SupplyTariffVersionInline]


@admin.register(SupplyContract)
class SupplyContractAdmin(admin.ModelAdmin):
    list_display = ("reference", "member", "connection_point", "tariff", "start", "end")
    list_filter = ("tariff", "payment_method")
    search_fields = ("reference", "member__membership_number", "member__legal_name")
    raw_id_fields = ("member", "connection_point")


@admin.register(BillingRun)
class BillingRunAdmin(admin.ModelAdmin):
    list_display = ("period", "started_at", "finished_at")
    readonly_fields = ("period", "started_at", "finished_at", "summary")


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in InvoiceLine._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Read-only: invoices change only through the billing run and the services."""

    list_display = ("__str__", "member", "period", "kind", "status", "gross", "issue_date")
    list_filter = ("status", "kind", "period")
    search_fields = ("number", "member__membership_number")
    inlines = [InvoiceLineInline]
    actions = ["review", "issue"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invoice._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _apply(self, request, queryset, service, verb):
        done = 0
        for invoice in queryset.order_by("member_id", "id"):
            try:
                service(invoice=invoice, actor=request.user)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} {verb}.")

    @admin.action(description="Mark reviewed")
    def review(self, request, queryset):
        self._apply(request, queryset, invoice_review, "reviewed")

    @admin.action(description="Issue (numbers are assigned now)")
    def issue(self, request, queryset):
        self._apply(request, queryset, invoice_issue, "issued")
