"""Admin: register meters and rotate their keys, review quarantine (filter, re-process),
raw batches and conflicts. (Readings and raw messages have composite primary keys, which the
Django 5.2 admin cannot edit; staff see them on the ingest page and per meter below.)"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from import_export import fields, resources, widgets

from apps.accounts.models import Member
from apps.accounts.policy import PolicyImportMixin, PolicyModelAdmin
from apps.core.exceptions import ApplicationError
from apps.core.import_widgets import IsoDateTimeWidget, WholeNumberWidget
from apps.meters.forms import MeterExchangeForm
from apps.meters.models import Conflict, Meter, Quarantine, RawBatch
from apps.meters.services import (
    ConflictDecision,
    conflict_resolve,
    meter_assign,
    meter_configs_publish_after_commit,
    meter_exchange,
    meter_key_rotate,
    meter_register,
    quarantine_reprocess,
)


class MemberNumberWidget(widgets.ForeignKeyWidget):
    """The member by membership number; an unknown number is that row's error."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
        try:
            return super().clean(value, row, **kwargs)
        except Member.DoesNotExist as exc:
            raise ValueError(f"No member with membership number {value}.") from exc


class MeterImportResource(resources.ModelResource):
    """Onboarding meters from CSV/XLSX: one row per new meter, registered by `meter_register`
    (the same checks and audit entry as one typed in). A serial already registered is an error:
    a meter's key and member change on its own page (key rotation, move-in), not by import."""

    member = fields.Field(
        attribute="member",
        column_name="membership_number",
        widget=MemberNumberWidget(Member, field="membership_number"),
    )

    active_from = fields.Field(
        attribute="active_from", column_name="active_from", widget=IsoDateTimeWidget()
    )

    capacity_w = fields.Field(
        attribute="capacity_w", column_name="capacity_w", widget=WholeNumberWidget()
    )
    interval_seconds = fields.Field(
        attribute="interval_seconds", column_name="interval_seconds", widget=WholeNumberWidget()
    )
    multiplier = fields.Field(
        attribute="multiplier", column_name="multiplier", widget=WholeNumberWidget()
    )

    class Meta:
        model = Meter
        fields = ("serial", "member", "asset_kind", "direction", "capacity_w", "active_from",
                  "interval_seconds", "multiplier", "public_key")  # fmt: skip
        import_id_fields = ("serial",)
        clean_model_instances = False
        skip_unchanged = False
        use_bulk = False

    def do_instance_save(self, instance: Meter, is_create: bool) -> None:
        if not is_create:
            raise ValidationError(
                {"serial": f"A meter with serial {instance.serial} is already registered."}
            )
        try:
            saved = meter_register(
                serial=instance.serial,
                member_id=instance.member_id,
                asset_kind=instance.asset_kind,
                direction=instance.direction,
                capacity_w=instance.capacity_w,
                active_from=instance.active_from,
                interval_seconds=instance.interval_seconds,
                multiplier=instance.multiplier,
                public_key_hex=instance.public_key or "",
                publish_config=False,  # all at once after the commit (after_import)
                actor=self._actor,
            )
        except ApplicationError as exc:
            field = next(iter(exc.extra), "serial")
            raise ValidationError({field: exc.message}) from exc
        instance.pk = saved.pk
        instance.address = saved.address
        instance.public_key = saved.public_key
        if saved.public_key:
            self._registered.append(saved)

    def import_data(self, dataset: Any, **kwargs: Any) -> Any:
        self._actor = kwargs.get("user")
        self._registered: list[Meter] = []
        return super().import_data(dataset, **kwargs)

    def after_import(self, dataset: Any, result: Any, **kwargs: Any) -> None:
        super().after_import(dataset, result, **kwargs)
        if not kwargs.get("dry_run") and not (result.has_errors() or result.invalid_rows):
            meter_configs_publish_after_commit(meters=self._registered)

    REQUIRED = ("serial", "capacity_w", "active_from")

    def import_field(self, field: Any, instance: Any, row: Any, is_m2m: bool = False, **kw: Any):
        if field.column_name in self.REQUIRED and row.get(field.column_name) in (None, ""):
            raise ValueError(f"The column {field.column_name} is required.")
        return super().import_field(field, instance, row, is_m2m, **kw)


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
class MeterAdmin(PolicyImportMixin, PolicyModelAdmin):
    date_hierarchy = "active_from"
    resource_classes = [MeterImportResource]
    form = MeterForm
    list_display = ["serial", "member", "asset_kind", "direction", "address", "firmware_version",
                    "last_seen"]  # fmt: skip
    list_filter = ["asset_kind", "direction"]
    search_fields = ["serial", "address", "member__legal_name", "member__membership_number"]
    readonly_fields = ["public_key", "address", "config_seq", "last_seq", "last_interval_start",
                       "member_since", "readings_chart", "recent_readings"]  # fmt: skip
    raw_id_fields = ["member", "connection_point"]
    actions = ["exchange"]

    @admin.action(description="Exchange the meter (final reading, new device)…")
    def exchange(self, request, queryset):
        """One meter: the form, then a confirmation page; only the confirming POST exchanges."""
        meters = list(queryset[:2])
        if len(meters) != 1:
            self.message_user(request, "Select exactly one meter to exchange.", messages.ERROR)
            return None
        old = meters[0]
        staged = request.POST.get("stage") == "confirm"
        form = MeterExchangeForm(request.POST if staged else None)
        if staged and form.is_valid():
            data = form.cleaned_data
            if request.POST.get("confirm") == "yes":
                try:
                    exchange = meter_exchange(
                        old_meter=old, new_serial=data["new_serial"],
                        new_public_key=data["new_public_key"], at=data["at"],
                        old_final_register_wh=data["old_final_register_wh"],
                        new_initial_register_wh=data["new_initial_register_wh"],
                        actor=request.user,
                    )  # fmt: skip
                except ApplicationError as exc:
                    form.add_error(None, exc.message)
                else:
                    self.message_user(
                        request,
                        f"{old.serial} exchanged for {exchange.new_meter.serial} at "
                        f"{exchange.interval_start:%Y-%m-%d %H:%M} UTC.",
                    )
                    return None
            if form.is_valid():
                return self._exchange_page(request, old, form, "confirm")
        return self._exchange_page(request, old, form, "form")

    def _exchange_page(self, request, old, form, stage):
        from django.template.response import TemplateResponse

        summary = []
        if stage == "confirm":
            d = form.cleaned_data
            summary = [
                ("Meter removed", f"{old.serial} (member {old.member_id or '—'})"),
                ("Swapped at", f"{d['at']:%Y-%m-%d %H:%M} UTC"),
                ("Old meter's final import register", f"{d['old_final_register_wh']} Wh"),
                ("New meter", d["new_serial"]),
                ("New meter's initial import register", f"{d['new_initial_register_wh']} Wh"),
            ]
        return TemplateResponse(
            request,
            "admin/confirm_form.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Exchange meter {old.serial}",
                "opts": self.model._meta,
                "form": form,
                "stage": stage,
                "summary": summary,
                "intro": "The old meter's share of the exchange interval is recorded from its "
                "final register and it is retired; the new meter takes over at the same site "
                "and member.",
                "warning": "This cannot be undone.",
                "submit_label": "Yes, exchange the meter",
                "hidden": [
                    ("action", "exchange"),
                    (admin.helpers.ACTION_CHECKBOX_NAME, old.pk),
                ],  # fmt: skip
                "cancel_url": request.get_full_path(),
            },
        )

    def _save_edited(self, request, obj, form, change) -> None:
        """A change saves only the fields staff edited: the rest of the row (the replay guard
        `last_seq`, `config_seq`, `last_seen`) is written by ingest and config publishing at any
        moment, and a whole-row save could put the values read a moment earlier back."""
        if not change:
            super().save_model(request, obj, form, change)
            return
        concrete = {f.name for f in Meter._meta.concrete_fields}
        fields = [name for name in form.changed_data if name in concrete and name != "member"]
        if fields:
            obj.save(update_fields=fields)

    def save_model(self, request, obj, form, change):
        if change and "member" in form.changed_data:
            # A change of member is a move-in: through the service, which starts the new
            # occupant's view of the meter's readings now (the previous history stays theirs).
            new_member = obj.member_id
            obj.member_id = form.initial.get("member")
            self._save_edited(request, obj, form, change)
            meter_assign(meter=obj, member_id=new_member, since=timezone.now(), actor=request.user)
            obj.refresh_from_db()
            return
        self._save_edited(request, obj, form, change)
        key = form.cleaned_data.get("new_public_key")
        if key:
            try:
                meter_key_rotate(meter=obj, public_key_hex=key, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"Device key registered: {obj.address}")

    @staticmethod
    def _recent_rows(meter_id: int, limit: int) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT interval_start, import_wh, export_wh, quality, version, source "
                "FROM meters_reading WHERE meter_id = %s AND is_current "
                "ORDER BY interval_start DESC LIMIT %s",
                [meter_id, limit],
            )
            return cursor.fetchall()

    @admin.display(description="Last 96 intervals (import blue, export orange, Wh)")
    def readings_chart(self, obj):
        """A small inline SVG (no script, nothing fetched) of the current readings."""
        rows = list(reversed(self._recent_rows(obj.pk, 96))) if obj.pk else []
        if len(rows) < 2:
            return "No readings yet."
        width, height = 480, 80
        top = max(max(r[1], r[2]) for r in rows) or 1

        def points(column: int) -> str:
            step = width / (len(rows) - 1)
            return " ".join(
                f"{i * step:.1f},{height - r[column] * height / top:.1f}"
                for i, r in enumerate(rows)
            )

        return format_html(
            '<svg class="meter-readings-chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
            'role="img" aria-label="Readings from {first} to {last} UTC, max {top} Wh">'
            '<polyline fill="none" stroke="#2b6cb0" stroke-width="1.5" points="{imp}"/>'
            '<polyline fill="none" stroke="#dd6b20" stroke-width="1.5" points="{exp}"/></svg>'
            "<div>{first} – {last} UTC · max {top} Wh</div>",
            w=width, h=height, imp=points(1), exp=points(2), top=top,
            first=f"{rows[0][0]:%Y-%m-%d %H:%M}", last=f"{rows[-1][0]:%Y-%m-%d %H:%M}",
        )  # fmt: skip

    @admin.display(description="Recent readings (current versions)")
    def recent_readings(self, obj):
        if not obj.pk:
            return "-"
        rows = self._recent_rows(obj.pk, 20)
        return format_html_join(
            "",
            "<div>{} · {} Wh in · {} Wh out · quality {} · v{} · {}</div>",
            ((f"{t:%Y-%m-%d %H:%M}", i, e, q, v, s) for t, i, e, q, v, s in rows),
        )


@admin.register(Quarantine)
class QuarantineAdmin(PolicyModelAdmin):
    date_hierarchy = "received_at"
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
    date_hierarchy = "received_at"
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


class ConflictDecisionForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why: kept in the audit log (and, when accepted, on the new reading version).",
    )


@admin.register(Conflict)
class ConflictAdmin(PolicyModelAdmin):
    """Conflicts are decided, not edited: "Accept" (the value becomes the current reading as a
    new version, re-settled like a late correction) or "Dismiss" (status only), each after a
    confirmation page that asks for the reason (`conflict_resolve`). The status is read-only."""

    date_hierarchy = "detected_at"
    list_display = ["detected_at", "meter", "interval_start", "existing_version", "import_wh",
                    "export_wh", "status"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["meter__serial"]
    readonly_fields = [f.name for f in Conflict._meta.fields] + ["stored_reading"]
    exclude = ["signature"]
    actions = ["accept", "dismiss"]
    change_form_template = "admin/meters/conflict/change_form.html"

    def has_add_permission(self, request, *args):
        return False  # conflicts come from ingest

    @admin.display(description="Stored current reading of the interval")
    def stored_reading(self, obj):
        if not obj.pk:
            return "-"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT import_wh, export_wh, version, source FROM meters_reading "
                "WHERE meter_id = %s AND interval_start = %s AND is_current",
                [obj.meter_id, obj.interval_start],
            )
            row = cursor.fetchone()
        if row is None:
            return "none"
        return format_html("{} Wh in · {} Wh out · v{} · {}", *row)

    def _decide(self, request, queryset, decision: str, verb: str):
        form = ConflictDecisionForm(request.POST if request.POST.get("confirm") == "yes" else None)
        conflicts = list(queryset.select_related("meter").order_by("pk"))
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/meters/conflict/decide_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"{verb} {len(conflicts)} conflict{pluralize(len(conflicts))}?",
                    "opts": self.model._meta,
                    "conflicts": conflicts,
                    "decision": decision,
                    "verb": verb,
                    "form": form,
                    "action_name": "accept" if decision == ConflictDecision.ACCEPT else "dismiss",
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        done = 0
        for conflict in conflicts:
            try:
                conflict_resolve(
                    conflict=conflict,
                    decision=decision,
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                )
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{conflict}: {exc.message}", messages.ERROR)
        if done:
            past = "accepted" if decision == ConflictDecision.ACCEPT else "dismissed"
            self.message_user(
                request, f"{done} conflict{pluralize(done)} {past}.", messages.SUCCESS
            )
        return None

    @admin.action(description="Accept: the value becomes the current reading (asks for a reason)")
    def accept(self, request, queryset):
        return self._decide(request, queryset, ConflictDecision.ACCEPT, "Accept")

    @admin.action(description="Dismiss: keep the stored reading (asks for a reason)")
    def dismiss(self, request, queryset):
        return self._decide(request, queryset, ConflictDecision.DISMISS, "Dismiss")
