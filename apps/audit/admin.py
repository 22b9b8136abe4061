from django.contrib import admin

from apps.audit.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
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
        "content_sha256",
        "chain_seq",
        "prev_hash",
        "row_hash",
    )

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
