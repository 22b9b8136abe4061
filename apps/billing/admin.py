from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from apps.accounts.admin import MemberAdmin
from apps.accounts.models import Member
from apps.accounts.policy import PolicyInline, PolicyModelAdmin
from apps.accounts.services import member_status_change
from apps.billing.models import (
    BankStatement,
    BankTransaction,
    BillingRun,
    Dispute,
    Invoice,
    InvoiceLine,
    JoinApplication,
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
    join_approve,
    join_reject,
    member_leave,
    member_site_add,
)
from apps.core.exceptions import ApplicationError, InvalidTransition
from apps.grid.models import Transformer


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


# --- Membership: join applications and the member lifecycle ----------------------------------


class ApproveForm(forms.Form):
    transformer = forms.ModelChoiceField(
        queryset=Transformer.objects.order_by("name"),
        help_text="The transformer the new site is connected to.",
    )
    tariff = forms.ModelChoiceField(
        queryset=SupplyTariff.objects.order_by("code"),
        help_text="The supply tariff of the site's contract.",
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"size": 60}))


class LeaveForm(ReasonForm):
    left_on = forms.DateField(
        required=False, help_text="Last day of membership (YYYY-MM-DD); empty: today."
    )


class SiteForm(ApproveForm):
    code = forms.CharField(max_length=40, required=False, help_text="Empty: <number>-S<n>.")
    street = forms.CharField(max_length=200, required=False)
    postal_code = forms.CharField(max_length=20, required=False)
    city = forms.CharField(max_length=100, required=False)
    start = forms.DateField(help_text="First day of supply (YYYY-MM-DD).")


def _confirm(
    model_admin,
    request,
    *,
    action: str,
    title: str,
    explanation: str,
    confirm_label: str,
    rows: list[dict],
    form,
):
    return TemplateResponse(
        request,
        "admin/billing/membership_confirmation.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "opts": model_admin.model._meta,
            "explanation": explanation,
            "confirm_label": confirm_label,
            "rows": rows,
            "any_ok": any(r["ok"] for r in rows),
            "form": form,
            "action_name": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        },
    )


def _each(model_admin, request, objects, call, done: str) -> None:
    ok = 0
    for obj in objects:
        try:
            call(obj)
            ok += 1
        except (ApplicationError, InvalidTransition) as exc:
            model_admin.message_user(request, f"{obj}: {exc}", messages.ERROR)
    if ok:
        model_admin.message_user(request, f"{ok} {done}.", messages.SUCCESS)


@admin.register(JoinApplication)
class JoinApplicationAdmin(PolicyModelAdmin):
    """Applications from /join/. Approve and reject are actions with a confirmation page
    (approve asks for the site's transformer and tariff, reject for the reason)."""

    service_owned = True
    date_hierarchy = "submitted_at"
    list_display = ("id", "legal_name", "email", "status", "shares", "submitted_at", "verified_at")
    list_filter = ("status",)
    search_fields = ("legal_name", "email", "member__membership_number")
    raw_id_fields = ("member", "decided_by", "share_invoice")
    readonly_fields = [f.name for f in JoinApplication._meta.fields]
    actions = ["approve", "reject"]

    @admin.action(description="Approve (verified applications)")
    def approve(self, request, queryset):
        applications = list(queryset.select_related("member").order_by("id"))
        form = ApproveForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if request.POST.get("confirm") != "yes" or not form.is_valid():
            rows = [
                {
                    "pk": a.pk,
                    "label": f"{a.legal_name} <{a.email}>: {a.shares} share(s), "
                    f"{a.share_capital} {settings.BILLING_CURRENCY}",
                    "ok": a.status == JoinApplication.Status.VERIFIED,
                    "why": "e-mail not verified yet"
                    if a.status == JoinApplication.Status.PENDING
                    else f"already {a.get_status_display().lower()}",
                }
                for a in applications
            ]
            if form.is_bound is False:
                form = ApproveForm(
                    initial={
                        "transformer": Transformer.objects.order_by("name").first(),
                        "tariff": SupplyTariff.objects.order_by("code").first(),
                    }
                )
            return _confirm(
                self,
                request,
                action="approve",
                title="Approve join applications?",
                explanation="Approving makes each applicant an active member with a site and "
                "supply contract, records their SEPA mandate, issues their share capital invoice "
                "and e-mails them the link to set their password.",
                confirm_label="Yes, approve",
                rows=rows,
                form=form,
            )
        base_url = request.build_absolute_uri("/")
        _each(
            self,
            request,
            applications,
            lambda a: join_approve(
                application=a,
                actor=request.user,
                base_url=base_url,
                transformer=form.cleaned_data["transformer"],
                tariff=form.cleaned_data["tariff"],
            ),
            "application(s) approved",
        )
        return None

    @admin.action(description="Reject with a reason")
    def reject(self, request, queryset):
        applications = list(queryset.order_by("id"))
        form = ReasonForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if request.POST.get("confirm") != "yes" or not form.is_valid():
            open_ = (JoinApplication.Status.PENDING, JoinApplication.Status.VERIFIED)
            rows = [
                {
                    "pk": a.pk,
                    "label": f"{a.legal_name} <{a.email}>",
                    "ok": a.status in open_,
                    "why": f"already {a.get_status_display().lower()}",
                }
                for a in applications
            ]
            return _confirm(
                self,
                request,
                action="reject",
                title="Reject join applications?",
                explanation="The applicant is told the reason by e-mail.",
                confirm_label="Yes, reject",
                rows=rows,
                form=form,
            )
        _each(
            self,
            request,
            applications,
            lambda a: join_reject(
                application=a, reason=form.cleaned_data["reason"], actor=request.user
            ),
            "application(s) rejected",
        )
        return None


admin.site.unregister(Member)


@admin.register(Member)
class MemberLifecycleAdmin(MemberAdmin):
    """The accounts app's Member admin plus the lifecycle actions that need billing and grid
    (the accounts app does not import the apps above it): suspend, reactivate, leave (final
    invoice, share capital refund) and add a site with its supply contract."""

    actions = ["suspend", "reactivate", "leave", "add_site"]

    def _status_action(self, request, queryset, *, action, target, title, label, done):
        members = list(queryset.order_by("membership_number"))
        # Reactivation is for suspended members: an applicant is admitted by approving their
        # join application (site, contract, mandate, share capital), never from here.
        allowed_from = (
            {Member.Status.SUSPENDED}
            if target == Member.Status.ACTIVE
            else {s for s, moves in Member.TRANSITIONS.items() if target in moves}
        )
        form_class = LeaveForm if target == Member.Status.LEFT else ReasonForm
        form = form_class(request.POST if request.POST.get("confirm") == "yes" else None)
        if request.POST.get("confirm") != "yes" or not form.is_valid():
            rows = [
                {
                    "pk": m.pk,
                    "label": f"{m} ({m.get_status_display()})",
                    "ok": m.status in allowed_from,
                    "why": f"a {m.get_status_display().lower()} member cannot move to {target}",
                }
                for m in members
            ]
            explanation = {
                Member.Status.SUSPENDED: "A suspended member cannot trade until reactivated.",
                Member.Status.ACTIVE: "The member can trade again.",
                Member.Status.LEFT: "Leaving ends every supply contract on the last day, drafts "
                "the final invoice of that month and refunds the share capital per the "
                "cooperative's setting. The member keeps access to their documents.",
            }[target]
            return _confirm(
                self,
                request,
                action=action,
                title=title,
                explanation=explanation,
                confirm_label=label,
                rows=rows,
                form=form,
            )
        reason = form.cleaned_data["reason"]
        refused = [m for m in members if m.status not in allowed_from]
        for m in refused:
            self.message_user(
                request, f"{m}: a {m.get_status_display().lower()} member cannot be moved "
                f"to {target} here.", messages.ERROR,
            )  # fmt: skip
        members = [m for m in members if m.status in allowed_from]
        if target == Member.Status.LEFT:
            left_on = form.cleaned_data.get("left_on")
            _each(
                self,
                request,
                members,
                lambda m: member_leave(
                    member=m, reason=reason, left_on=left_on, actor=request.user
                ),
                done,
            )
        else:
            _each(
                self,
                request,
                members,
                lambda m: member_status_change(
                    member=m, status=target, reason=reason, actor=request.user
                ),
                done,
            )
        return None

    @admin.action(description="Suspend (with a reason)")
    def suspend(self, request, queryset):
        return self._status_action(
            request, queryset, action="suspend", target=Member.Status.SUSPENDED,
            title="Suspend members?", label="Yes, suspend", done="member(s) suspended",
        )  # fmt: skip

    @admin.action(description="Reactivate (with a reason)")
    def reactivate(self, request, queryset):
        return self._status_action(
            request, queryset, action="reactivate", target=Member.Status.ACTIVE,
            title="Reactivate members?", label="Yes, reactivate", done="member(s) reactivated",
        )  # fmt: skip

    @admin.action(description="Leave the cooperative (final invoice, share refund)")
    def leave(self, request, queryset):
        return self._status_action(
            request, queryset, action="leave", target=Member.Status.LEFT,
            title="Members leave the cooperative?", label="Yes, they leave",
            done="member(s) left",
        )  # fmt: skip

    @admin.action(description="Add a site with its supply contract")
    def add_site(self, request, queryset):
        members = list(queryset.order_by("membership_number"))
        form = SiteForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if request.POST.get("confirm") != "yes" or not form.is_valid() or len(members) != 1:
            rows = [
                {
                    "pk": m.pk,
                    "label": str(m),
                    "ok": len(members) == 1,
                    "why": "choose exactly one member",
                }
                for m in members
            ]
            return _confirm(
                self,
                request,
                action="add_site",
                title="Add a site?",
                explanation="The site is connected under the transformer and supplied under "
                "its own contract from the start date; register its meters as usual.",
                confirm_label="Yes, add the site",
                rows=rows,
                form=form,
            )
        d = form.cleaned_data
        _each(
            self,
            request,
            members,
            lambda m: member_site_add(
                member=m,
                transformer=d["transformer"],
                tariff=d["tariff"],
                start=d["start"],
                code=d["code"],
                street=d["street"],
                postal_code=d["postal_code"],
                city=d["city"],
                actor=request.user,
            ),
            "site(s) added",
        )
        return None


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
