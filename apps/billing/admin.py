from django.contrib import admin, messages

from apps.accounts.policy import PolicyInline, PolicyModelAdmin
from apps.billing.models import (
    BankStatement,
    BankTransaction,
    BillingRun,
    Dispute,
    Invoice,
    InvoiceLine,
    LedgerEntry,
    LedgerLine,
    Mandate,
    PaymentInstruction,
    Reminder,
    SepaFile,
    SiteMove,
    SupplyContract,
    SupplyTariff,
    SupplyTariffVersion,
)
from apps.billing.services import (
    dispute_close,
    dispute_open,
    invoice_issue,
    invoice_review,
)
from apps.core.exceptions import ApplicationError


class SupplyTariffVersionInline(PolicyInline, admin.TabularInline):
    model = SupplyTariffVersion
    extra = 0


@admin.register(SupplyTariff)
class SupplyTariffAdmin(PolicyModelAdmin):
    list_display = ("code", "name")
    inlines = [SupplyTariffVersionInline]


@admin.register(SupplyContract)
class SupplyContractAdmin(PolicyModelAdmin):
    date_hierarchy = "start"
    list_display = ("reference", "member", "connection_point", "tariff", "start", "end")
    list_filter = ("tariff", "payment_method")
    search_fields = ("reference", "member__membership_number", "member__legal_name")
    raw_id_fields = ("member", "connection_point", "tariff")


@admin.register(BillingRun)
class BillingRunAdmin(PolicyModelAdmin):
    date_hierarchy = "started_at"
    service_owned = True
    list_display = ("period", "started_at", "finished_at")
    readonly_fields = ("period", "started_at", "finished_at", "summary")


class InvoiceLineInline(PolicyInline, admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in InvoiceLine._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(PolicyModelAdmin):
    """Read-only: invoices change only through the billing run and the services (the actions
    call them)."""

    service_owned = True

    list_display = ("__str__", "member", "period", "kind", "status", "gross", "issue_date")
    list_filter = ("status", "kind", "period")
    search_fields = ("number", "member__membership_number")
    inlines = [InvoiceLineInline]
    actions = ["review", "issue", "dispute"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invoice._meta.fields]

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

    @admin.action(description="Mark disputed (no reminders while open)")
    def dispute(self, request, queryset):
        def open_dispute(*, invoice, actor):
            return dispute_open(invoice=invoice, reason="disputed by the member", actor=actor)

        self._apply(request, queryset, open_dispute, "marked disputed")


class ReadOnlyAdmin(PolicyModelAdmin):
    """Rows written only by the billing services: staff look, never edit."""

    service_owned = True

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(Mandate)
class MandateAdmin(ReadOnlyAdmin):
    date_hierarchy = "signed_on"
    list_display = ("reference", "member", "iban", "bic", "signed_on", "status")
    list_filter = ("status",)
    search_fields = ("reference", "member__membership_number", "iban")


@admin.register(SepaFile)
class SepaFileAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "period", "count", "total", "execution_date")
    list_filter = ("kind", "period")


@admin.register(PaymentInstruction)
class PaymentInstructionAdmin(ReadOnlyAdmin):
    list_display = ("end_to_end_id", "invoice", "amount", "status")
    list_filter = ("status",)
    search_fields = ("end_to_end_id", "invoice__number")


@admin.register(BankStatement)
class BankStatementAdmin(ReadOnlyAdmin):
    date_hierarchy = "imported_at"
    list_display = ("message_id", "iban", "imported_at", "entry_count")


@admin.register(BankTransaction)
class BankTransactionAdmin(ReadOnlyAdmin):
    date_hierarchy = "booking_date"
    list_display = ("booking_date", "amount", "kind", "status", "invoice", "reference")
    list_filter = ("status", "kind")
    search_fields = ("end_to_end_id", "reference", "counterparty")


class LedgerLineInline(PolicyInline, admin.TabularInline):
    model = LedgerLine
    extra = 0
    can_delete = False
    readonly_fields = ("account", "member", "invoice", "amount")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    date_hierarchy = "booked_on"
    list_display = ("booked_on", "kind", "description")
    list_filter = ("kind",)
    inlines = [LedgerLineInline]


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    date_hierarchy = "sent_on"
    list_display = ("invoice", "level", "sent_on", "due_date", "fee")


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    date_hierarchy = "opened_at"
    list_display = ("invoice", "reason", "opened_at", "closed_at")
    actions = ["close"]

    @admin.action(description="Close the dispute (dunning resumes)")
    def close(self, request, queryset):
        for dispute in queryset.filter(closed_at__isnull=True):
            dispute_close(dispute=dispute, actor=request.user)
        self.message_user(request, "Closed.")


@admin.register(SiteMove)
class SiteMoveAdmin(PolicyModelAdmin):
    """Moves are recorded by `site_move` only (the staff page *Moves*, `billing:staff_moves`,
    with its confirmation page); here they are listed read-only."""

    date_hierarchy = "at"
    service_owned = True
    list_display = ("at", "connection_point", "leaving_member", "incoming_member",
                    "final_reading", "ended_contract", "started_contract")  # fmt: skip
    raw_id_fields = ("connection_point", "leaving_member", "incoming_member",
                     "ended_contract", "started_contract")  # fmt: skip
