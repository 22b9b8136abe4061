from django.contrib import admin

from apps.accounts.policy import PolicyModelAdmin
from apps.compliance.models import AuditLog, ErasureRequest


@admin.register(AuditLog)
class AuditLogAdmin(PolicyModelAdmin):
    """Append-only: nobody adds, changes or deletes audit rows through the admin."""

    list_display = ("created_at", "event", "actor_label", "target_type", "target_id")
    list_filter = ("event", "target_type", "created_at")
    search_fields = ("event", "actor_label", "actor__email", "target_type", "target_id")
    date_hierarchy = "created_at"
    list_select_related = ("actor",)
    readonly_fields = (
        "created_at",
        "event",
        "actor",
        "actor_label",
        "target_type",
        "target_id",
        "details",
    )

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ErasureRequest)
class ErasureRequestAdmin(PolicyModelAdmin):
    """Requests are handled on the staff erasure page (which runs the erasure service and its
    checks); the admin lists them read-only so nothing bypasses those checks."""

    list_display = ("requested_at", "member", "status", "handled_at", "handled_by")
    list_filter = ("status", "requested_at")
    search_fields = ("member__membership_number", "member__legal_name", "outcome")
    list_select_related = ("member", "handled_by")
    readonly_fields = ("member", "status", "requested_at", "handled_at", "handled_by", "outcome")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
