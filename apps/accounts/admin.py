from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources

from apps.accounts.models import Member, MFAEnrollment, User, WalletNonce
from apps.accounts.policy import PolicyImportMixin, PolicyInline, PolicyModelAdmin
from apps.accounts.services import (
    member_applicant_create,
    member_status_change,
    mfa_enrollment_issue,
    mfa_reset,
)
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


class MemberImportResource(resources.ModelResource):
    """A member register from CSV/XLSX: one row per new member, created by
    `member_applicant_create` (a login without a password, audit `member.applied`) and, unless
    the row's status is ``applicant``, admitted by `member_status_change` (audit
    `member.activated`, member role granted). Nobody is e-mailed: staff send the invitations from
    each member's page. A membership number or e-mail already registered is that row's error."""

    email = fields.Field(attribute="email", column_name="email")
    import_status = fields.Field(attribute="status", column_name="status")

    class Meta:
        model = Member
        fields = ("membership_number", "email", "legal_name", "kind", "street", "postal_code",
                  "city", "country", "import_status")  # fmt: skip
        import_id_fields = ("membership_number",)
        clean_model_instances = False
        skip_unchanged = False
        use_bulk = False

    REQUIRED = ("membership_number", "email", "legal_name")
    STATUSES = (Member.Status.ACTIVE, Member.Status.APPLICANT)

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        value = row.get(field.column_name)
        if field.column_name in self.REQUIRED and value in (None, ""):
            raise ValueError(f"The column {field.column_name} is required.")
        if field.column_name == "email":
            try:
                validate_email(str(value).strip())
            except ValidationError as exc:
                raise ValueError(f"{value!r} is not an e-mail address.") from exc
        if field.column_name == "kind" and value not in (None, "", *Member.Kind.values):
            raise ValueError(f"Unknown kind {value!r} (one of {', '.join(Member.Kind.values)}).")
        if field.column_name == "status" and value not in (None, "", *self.STATUSES):
            raise ValueError(f"Unknown status {value!r} (active or applicant).")
        return super().import_field(field, instance, row, is_m2m, **kwargs)

    def import_data(self, dataset, **kwargs):
        self._actor = kwargs.get("user")
        return super().import_data(dataset, **kwargs)

    def do_instance_save(self, instance: Member, is_create: bool) -> None:
        number = instance.membership_number
        if not is_create:
            raise ValidationError({"membership_number": f"Member {number} already exists."})
        try:
            saved = member_applicant_create(
                email=str(instance.email).strip(),
                legal_name=instance.legal_name.strip(),
                street=instance.street or "",
                postal_code=instance.postal_code or "",
                city=instance.city or "",
                country=(instance.country or "DE").upper(),
                membership_number=number.strip(),
                kind=instance.kind or Member.Kind.CONSUMER,
                actor=self._actor,
            )
            if (instance.status or Member.Status.ACTIVE) == Member.Status.ACTIVE:
                saved = member_status_change(
                    member=saved,
                    status=Member.Status.ACTIVE,
                    reason="imported from the member register",
                    actor=self._actor,
                )
        except ApplicationError as exc:
            field = next(iter(exc.extra or {}), "membership_number")
            raise ValidationError({field: exc.message}) from exc
        instance.pk = saved.pk
        instance.user_id = saved.user_id


@admin.register(Member)
class MemberAdmin(PolicyImportMixin, StatusAdminMixin, PolicyModelAdmin):
    resource_classes = [MemberImportResource]
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
