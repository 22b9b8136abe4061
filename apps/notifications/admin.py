from django.contrib import admin

from apps.accounts.policy import PolicyInline, PolicyModelAdmin
from apps.notifications.models import Delivery, Notification


class DeliveryInline(PolicyInline, admin.TabularInline):
    model = Delivery
    extra = 0
    fields = ("channel", "status", "attempts", "last_error", "sent_at")
    readonly_fields = fields
    can_delete = False


@admin.register(Notification)
class NotificationAdmin(PolicyModelAdmin):
    """Sent notifications and their deliveries: written only by the notify service."""

    service_owned = True
    list_display = ("created_at", "member", "kind", "subject", "in_inbox", "read_at")
    list_filter = ("kind", "in_inbox")
    date_hierarchy = "created_at"
    search_fields = ("member__membership_number", "subject")
    raw_id_fields = ("member",)
    inlines = [DeliveryInline]


@admin.register(Delivery)
class DeliveryAdmin(PolicyModelAdmin):
    service_owned = True
    list_display = ("id", "notification", "channel", "status", "attempts", "sent_at")
    list_filter = ("channel", "status")
    date_hierarchy = "sent_at"
    raw_id_fields = ("notification", "subscription")
