from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Member, User, WalletNonce
from apps.core.state import StatusAdminMixin, status_form_class, status_formset_save


class MemberInline(admin.StackedInline):
    model = Member
    form = status_form_class(forms.ModelForm)
    can_delete = False
    extra = 0
    fk_name = "user"
    readonly_fields = ("wallet_address", "wallet_linked_at", "pseudonymised_at")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Email login, no username."""

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

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += self.PRIVILEGE_FIELDS
        return fields

    def save_formset(self, request, form, formset, change):
        if formset.model is Member:
            status_formset_save(formset, actor=request.user)
        else:
            super().save_formset(request, form, formset, change)


@admin.register(Member)
class MemberAdmin(StatusAdminMixin, admin.ModelAdmin):
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
    readonly_fields = ("wallet_address", "wallet_linked_at", "pseudonymised_at")


@admin.register(WalletNonce)
class WalletNonceAdmin(admin.ModelAdmin):
    """Security record of issued Sign-In with Ethereum nonces: read-only."""

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
