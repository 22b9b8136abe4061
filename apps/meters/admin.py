"""Admin: register meters and rotate their keys, review quarantine (filter, re-process),
raw batches and conflicts. (Readings and raw messages have composite primary keys, which the
Django 5.2 admin cannot edit; staff see them on the ingest page and per meter below.)"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import connection
from django.utils import timezone
from django.utils.html import format_html_join

from apps.accounts.policy import PolicyModelAdmin
from apps.core.exceptions import ApplicationError
from apps.core.state import StatusAdminMixin
from apps.meters.models import Conflict, Meter, Quarantine, RawBatch
from apps.meters.services import meter_assign, meter_key_rotate, quarantine_reprocess


class MeterForm(forms.ModelForm):
    new_public_key = forms.CharField(
        required=False,
        help_text="Register or rotate the device key: secp256k1 public key (hex, compressed or "
        "uncompressed). The Ethereum address is derived; the config version is bumped.",
    )

    class Meta:
        model = Meter
        fields = ["serial", "member", "connection_point", "asset_kind", "direction",
                  "interval_seconds", "multiplier", "capacity_w", "active_from", "active_to",
                  "firmware_version", "firmware_target", "config_version",
                  "typical_wh"]  # fmt: skip


@admin.register(Meter)
class MeterAdmin(PolicyModelAdmin):
    form = MeterForm
    list_display = ["serial", "member", "asset_kind", "direction", "address", "firmware_version",
                    "last_seen"]  # fmt: skip
    list_filter = ["asset_kind", "direction"]
    search_fields = ["serial", "address", "member__legal_name", "member__membership_number"]
    readonly_fields = ["public_key", "address", "last_seq", "last_interval_start",
                       "member_since", "recent_readings"]  # fmt: skip
    raw_id_fields = ["member", "connection_point"]

    def save_model(self, request, obj, form, change):
        if change and "member" in form.changed_data:
            # A change of member is a move-in: through the service, which starts the new
            # occupant's view of the meter's readings now (the previous history stays theirs).
            new_member = obj.member_id
            obj.member_id = form.initial.get("member")
            super().save_model(request, obj, form, change)
            meter_assign(meter=obj, member_id=new_member, since=timezone.now(), actor=request.user)
            obj.refresh_from_db()
            return
        super().save_model(request, obj, form, change)
        key = form.cleaned_data.get("new_public_key")
        if key:
            try:
                meter_key_rotate(meter=obj, public_key_hex=key, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"Device key registered: {obj.address}")

    @admin.display(description="Recent readings (current versions)")
    def recent_readings(self, obj):
        if not obj.pk:
            return "-"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT interval_start, import_wh, export_wh, quality, version, source "
                "FROM meters_reading WHERE meter_id = %s AND is_current "
                "ORDER BY interval_start DESC LIMIT 20",
                [obj.pk],
            )
            rows = cursor.fetchall()
        return format_html_join(
            "",
            "<div>{} · {} Wh in · {} Wh out · quality {} · v{} · {}</div>",
            ((f"{t:%Y-%m-%d %H:%M}", i, e, q, v, s) for t, i, e, q, v, s in rows),
        )


@admin.register(Quarantine)
class QuarantineAdmin(PolicyModelAdmin):
    list_display = ["received_at", "reason", "serial", "detail", "status", "source"]
    list_filter = ["reason", "status", "source"]
    search_fields = ["serial", "detail", "topic"]
    readonly_fields = ["received_at", "batch", "raw_message_id", "source", "topic", "serial",
                       "reason", "detail", "payload_text", "status", "reprocessed_at"]  # fmt: skip
    exclude = ["payload"]
    actions = ["reprocess"]

    @admin.display(description="Payload")
    def payload_text(self, obj):
        return bytes(obj.payload)[:4000].decode("utf-8", "replace")

    @admin.action(description="Re-process selected (after a fix, e.g. a key registered late)")
    def reprocess(self, request, queryset):
        counts = quarantine_reprocess(
            quarantine_ids=list(queryset.values_list("pk", flat=True)), actor=request.user
        )
        self.message_user(
            request,
            f"Re-processed: {counts['reprocessed']} accepted, "
            f"{counts['rejected_again']} rejected again.",
        )


@admin.register(RawBatch)
class RawBatchAdmin(PolicyModelAdmin):
    list_display = ["id", "received_at", "source", "bridge", "message_count", "status",
                    "accepted", "duplicates", "conflicts", "rejected", "processed_at"]  # fmt: skip
    list_filter = ["status", "source"]
    readonly_fields = [f.name for f in RawBatch._meta.fields] + ["raw_messages"]

    @admin.display(description="Messages as received")
    def raw_messages(self, obj):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, topic, payload FROM meters_rawmessage "
                "WHERE received_at = %s AND batch_id = %s ORDER BY id LIMIT 50",
                [obj.received_at, obj.pk],
            )
            rows = cursor.fetchall()
        return format_html_join(
            "", "<div><code>{} {}</code> {}</div>",
            ((i, t, bytes(p)[:300].decode("utf-8", "replace")) for i, t, p in rows),
        )  # fmt: skip


@admin.register(Conflict)
class ConflictAdmin(StatusAdminMixin, PolicyModelAdmin):
    list_display = ["detected_at", "meter", "interval_start", "existing_version", "import_wh",
                    "export_wh", "status"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["meter__serial"]
    readonly_fields = [f.name for f in Conflict._meta.fields if f.name != "status"]
