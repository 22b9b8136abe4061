from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Member, MFAEnrollment, User, WalletNonce
from apps.accounts.policy import PolicyInline, PolicyModelAdmin
from apps.accounts.services import mfa_enrollment_issue, mfa_reset
from apps.core.exceptions import ApplicationError
from apps.core.state import StatusAdminMixin, status_form_class, status_formset_save


class MemberInline(PolicyInline, admin.StackedInline):
    model = Member
    form = status_form_class(forms.ModelForm)
    can_delete = False
    extra = 0
    fk_name = "user"
    readonly_fields = ("wallet_address", "wallet_linked_at", "pseudonymised_at")


@admin.register(User)
class UserAdmin(PolicyModelAdmin, DjangoUserAdmin):
    """Email login, no username."""

    date_hierarchy = "date_joined"

    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "first_name", "last_name", "member__membership_number")
    readonly_fields = ("last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = (MemberInline,)
    # Only superusers grant rights: staff onboard people but cannot make anyone (themselves
    # included) staff, auditor or superuser.
    PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")

    actions = ("issue_mfa_enrollment", "reset_mfa")

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += self.PRIVILEGE_FIELDS
        return fields

    # Staff accounts (staff, auditors, superusers) are administered by superusers only: a staff
    # member cannot change, reset the password of, or delete a privileged account.
    def _privileged_target(self, request, obj) -> bool:
        return (
            obj is not None
            and (obj.is_staff or obj.is_superuser)
            and not (request.user.is_superuser)
        )

    def has_change_permission(self, request, obj=None) -> bool:
        if self._privileged_target(request, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if self._privileged_target(request, obj):
            return False
        return super().has_delete_permission(request, obj)

    def has_superuser_permission(self, request) -> bool:
        return request.user.is_superuser

    def _show_links(self, request, queryset, service) -> None:
        for user in queryset.order_by("pk"):
            try:
                token = service(user=user, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{user}: {exc.message}", messages.ERROR)
                continue
            link = request.build_absolute_uri(reverse("mfa_enroll", args=[token]))
            self.message_user(request, f"Enrollment link for {user} (send it privately): {link}")

    @admin.action(description="Issue an MFA enrollment link", permissions=["superuser"])
    def issue_mfa_enrollment(self, request, queryset):
        self._show_links(request, queryset, mfa_enrollment_issue)

    @admin.action(
        description="Reset two-factor authentication and issue a new enrollment link",
        permissions=["superuser"],
    )
    def reset_mfa(self, request, queryset):
        self._show_links(request, queryset, mfa_reset)

    def save_formset(self, request, form, formset, change):
        if formset.model is Member:
            status_formset_save(formset, actor=request.user)
        else:
            super().save_formset(request, form, formset, change)


@admin.register(Member)
class MemberAdmin(StatusAdminMixin, PolicyModelAdmin):
    list_display = (
        "membership_number",
        "legal_name",
        "kind",
        "status",
        "joined",
        "city",
        "wallet_address",
    )
    list_filter = ("kind", "status", "country", "joined")
    search_fields = (
        "membership_number",
        "legal_name",
        "user__email",
        "street",
        "postal_code",
        "city",
        "wallet_address",
    )
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    date_hierarchy = "joined"
    # The wallet is linked only by the member's own signature (Sign-In with Ethereum), and
    # pseudonymisation is a recorded data-rights operation: neither is edited by hand.
    # Membership status moves only through the lifecycle actions (approve, suspend, reactivate,
    # leave): each carries a reason and its effects (invitation, final invoice, share refund).
    readonly_fields = (
        "status", "related_records", "wallet_address", "wallet_linked_at", "pseudonymised_at",
    )  # fmt: skip
    # The chain salt unlinks on-chain beneficiary hashes from the member: generated by the
    # service, destroyed by erasure, never shown or typed in the admin.
    exclude = ("chain_salt",)
    # What staff look for on a member's page: each links to the list filtered to this member
    # (by URL: the accounts app does not import the apps above it).
    RELATED = (
        ("Site (connection point)", "grid_connectionpoint", "member__id__exact"),
        ("Meters", "meters_meter", "member__id__exact"),
        ("Statements", "market_statement", "member__id__exact"),
        ("Invoices", "billing_invoice", "member__id__exact"),
        ("Supply contracts", "billing_supplycontract", "member__id__exact"),
        ("Certificates owned", "incentives_certificate", "owner__id__exact"),
        ("Erasure requests", "compliance_erasurerequest", "member__id__exact"),
    )

    @admin.display(description="Related records")
    def related_records(self, obj):
        if not obj or not obj.pk:
            return "-"
        links = []
        for label, changelist, lookup in self.RELATED:
            try:
                url = reverse(f"admin:{changelist}_changelist")
            except NoReverseMatch:
                continue
            links.append((f"{url}?{lookup}={obj.pk}", label))
        return format_html(
            '<ul class="member-related">{}</ul>',
            format_html_join("", '<li><a href="{}">{}</a></li>', links),
        )


@admin.register(WalletNonce)
class WalletNonceAdmin(PolicyModelAdmin):
    """Security record of issued Sign-In with Ethereum nonces: read-only."""

    autocomplete_fields = ("user",)

    list_display = ("user", "nonce", "issued_at", "expires_at", "used_at")
    list_filter = ("issued_at", "used_at")
    search_fields = ("user__email", "nonce")
    list_select_related = ("user",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MFAEnrollment)
class MFAEnrollmentAdmin(PolicyModelAdmin):
    """Issued enrollment links (read-only: issued from the user list by a superuser)."""

    autocomplete_fields = ("user", "issued_by")

    list_display = (
        "user",
        "issued_by_label",
        "created_at",
        "expires_at",
        "redeemed_at",
        "completed_at",
    )
    list_filter = ("created_at",)
    search_fields = ("user__email",)
    exclude = ("nonce",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
