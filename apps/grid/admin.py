"""Admin: topology editable with inlines and a tree view; DR events with lifecycle actions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from import_export import fields, resources

from apps.accounts.models import Member
from apps.accounts.policy import PolicyImportMixin, PolicyInline, PolicyModelAdmin
from apps.core.exceptions import ApplicationError
from apps.core.import_widgets import LookupWidget, WholeNumberWidget
from apps.grid import selectors
from apps.grid.forms import DREventCreateForm
from apps.grid.models import (
    ChargePoint,
    ChargingSession,
    ConnectionPoint,
    DeviceCommand,
    DispatchPlan,
    DREvent,
    DRParticipation,
    Feeder,
    FlexibleDevice,
    Forecast,
    ForecastModelChoice,
    GridAlert,
    GridLine,
    OpenADRVen,
    StabilityAssessment,
    Substation,
    Transformer,
)
from apps.grid.services import (
    connection_point_create,
    dr_event_cancel,
    dr_event_create,
    dr_event_measure,
    dr_event_publish,
)


class FeederInline(PolicyInline, admin.TabularInline):
    model = Feeder
    extra = 0
    show_change_link = True


class TransformerInline(PolicyInline, admin.TabularInline):
    model = Transformer
    extra = 0
    show_change_link = True
    fields = ("name", "capacity_kva", "vk_percent", "vkr_percent", "std_type")


class ConnectionPointInline(PolicyInline, admin.TabularInline):
    model = ConnectionPoint
    extra = 0
    show_change_link = True
    raw_id_fields = ("member",)
    fields = ("code", "member", "bus_name", "contracted_power_w", "dr_enrolled")


class GridLineInline(PolicyInline, admin.TabularInline):
    model = GridLine
    extra = 0
    fields = ("name", "from_bus", "to_bus", "length_km", "std_type", "max_i_ka")


@admin.register(Substation)
class SubstationAdmin(PolicyModelAdmin):
    list_display = ("name", "voltage_kv", "capacity_kva")
    inlines = [FeederInline]
    change_list_template = "admin/grid/substation/change_list.html"

    def get_urls(self):
        return [
            path("tree/", self.admin_site.admin_view(self.tree_view), name="grid_topology_tree"),
            *super().get_urls(),
        ]

    def tree_view(self, request):
        context = {
            **self.admin_site.each_context(request),
            "title": "Grid topology",
            "tree": selectors.topology_tree(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/grid/topology_tree.html", context)


@admin.register(Feeder)
class FeederAdmin(PolicyModelAdmin):
    raw_id_fields = ("substation",)
    list_display = ("name", "substation", "capacity_kw")
    inlines = [TransformerInline]


@admin.register(Transformer)
class TransformerAdmin(PolicyModelAdmin):
    raw_id_fields = ("feeder",)
    list_display = ("name", "feeder", "capacity_kva", "vk_percent", "vkr_percent")
    inlines = [ConnectionPointInline, GridLineInline]


class ConnectionPointImportResource(resources.ModelResource):
    """Sites from CSV/XLSX: one row per new connection point, created by
    `connection_point_create` (code checks, bus from the transformer, audit
    `connection_point.created`). The member is named by membership number, the transformer by
    name; a code already taken is that row's error (sites change on their own page)."""

    member = fields.Field(
        attribute="member",
        column_name="membership_number",
        widget=LookupWidget(Member, "membership_number", "member with membership number"),
    )
    transformer = fields.Field(
        attribute="transformer",
        column_name="transformer",
        widget=LookupWidget(Transformer, "name", "transformer named"),
    )
    expected_annual_wh = fields.Field(
        attribute="expected_annual_wh", column_name="expected_annual_wh", widget=WholeNumberWidget()
    )
    pv_peak_w = fields.Field(
        attribute="pv_peak_w", column_name="pv_peak_w", widget=WholeNumberWidget()
    )
    contracted_power_w = fields.Field(
        attribute="contracted_power_w", column_name="contracted_power_w", widget=WholeNumberWidget()
    )

    class Meta:
        model = ConnectionPoint
        fields = ("code", "member", "transformer", "street", "postal_code", "city",
                  "expected_annual_wh", "pv_peak_w", "contracted_power_w")  # fmt: skip
        import_id_fields = ("code",)
        clean_model_instances = False
        skip_unchanged = False
        use_bulk = False

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        if field.column_name == "code" and row.get("code") in (None, ""):
            raise ValueError("The column code is required.")
        return super().import_field(field, instance, row, is_m2m, **kwargs)

    def import_data(self, dataset, **kwargs):
        self._actor = kwargs.get("user")
        return super().import_data(dataset, **kwargs)

    def do_instance_save(self, instance: ConnectionPoint, is_create: bool) -> None:
        if not is_create:
            raise ValidationError({"code": f"A site with code {instance.code} already exists."})
        try:
            saved = connection_point_create(
                member=instance.member,
                transformer=instance.transformer,
                code=instance.code,
                street=instance.street or "",
                postal_code=instance.postal_code or "",
                city=instance.city or "",
                expected_annual_wh=instance.expected_annual_wh,
                pv_peak_w=instance.pv_peak_w,
                contracted_power_w=instance.contracted_power_w or 30_000,
                actor=self._actor,
            )
        except ApplicationError as exc:
            field = next(iter(exc.extra or {}), "code")
            raise ValidationError({field: exc.message}) from exc
        instance.pk = saved.pk
        instance.bus_name = saved.bus_name


@admin.register(ConnectionPoint)
class ConnectionPointAdmin(PolicyImportMixin, PolicyModelAdmin):
    resource_classes = [ConnectionPointImportResource]
    list_display = ("code", "member", "transformer", "bus_name", "dr_enrolled")
    list_filter = ("transformer",)
    search_fields = ("code", "member__legal_name", "member__membership_number")
    raw_id_fields = ("member", "transformer")


@admin.register(GridLine)
class GridLineAdmin(PolicyModelAdmin):
    raw_id_fields = ("transformer",)
    list_display = ("name", "transformer", "from_bus", "to_bus", "length_km", "std_type")
    list_filter = ("transformer",)


class AnsweringFilter(admin.SimpleListFilter):
    """Devices flagged for not answering (left out of dispatch) versus those that answer."""

    title = "answering"
    parameter_name = "answering"

    def lookups(self, request, model_admin):
        return [("no", "No — left out of dispatch"), ("yes", "Yes")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(unresponsive_since__isnull=False)
        if self.value() == "yes":
            return queryset.filter(unresponsive_since__isnull=True)
        return queryset


@admin.register(FlexibleDevice)
class FlexibleDeviceAdmin(PolicyModelAdmin):
    date_hierarchy = "unresponsive_since"
    autocomplete_fields = ("meter",)
    raw_id_fields = ("connection_point",)
    list_display = (
        "serial",
        "kind",
        "connection_point",
        "max_charge_w",
        "capacity_wh",
        "soc_wh",
        "ev_plugged",
        "state_reported_at",
        "unresponsive_since",
        "active",
    )
    list_filter = (AnsweringFilter, "kind", "active")


class DeviceCommandInline(PolicyInline, admin.TabularInline):
    model = DeviceCommand
    extra = 0
    fields = ("device", "status", "sent_at", "acked_at")
    readonly_fields = fields
    can_delete = False


@admin.register(DispatchPlan)
class DispatchPlanAdmin(PolicyModelAdmin):
    date_hierarchy = "start"
    list_display = ("pk", "start", "status", "cost", "unmanaged_cost", "solve_seconds")
    list_filter = ("status",)
    inlines = [DeviceCommandInline]
    readonly_fields = [f.name for f in DispatchPlan._meta.fields]


@admin.register(DeviceCommand)
class DeviceCommandAdmin(PolicyModelAdmin):
    date_hierarchy = "created_at"
    raw_id_fields = ("plan", "device")
    list_display = ("command_id", "device", "plan", "status", "sent_at", "acked_at")
    list_filter = ("status",)


class DRParticipationInline(PolicyInline, admin.TabularInline):
    model = DRParticipation
    extra = 0
    fields = (
        "connection_point",
        "opt",
        "baseline_wh",
        "actual_wh",
        "delivered_wh",
        "reward_tokens",
    )
    readonly_fields = fields
    can_delete = False


@admin.register(DREvent)
class DREventAdmin(PolicyModelAdmin):
    date_hierarchy = "start"
    autocomplete_fields = ("created_by",)
    list_display = ("event_id", "modification_number", "signal_name", "start", "end", "status")
    list_filter = ("status", "signal_name")
    inlines = [DRParticipationInline]
    readonly_fields = ("status", "modification_number", "published_at", "chain_intent_ref")
    actions = ["publish", "cancel", "measure"]

    def get_urls(self):
        return [
            path(
                "create/", self.admin_site.admin_view(self.create_view), name="grid_drevent_create"
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return redirect("admin:grid_drevent_create")

    def create_view(self, request):
        """Create (and optionally publish) an event through the DR services."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DREventCreateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                event = dr_event_create(
                    start=data["start"],
                    end=data["end"],
                    connection_point_ids=data["target_ids"],
                    signal_name=data["signal_name"],
                    signal_type=data["signal_type"],
                    signal_values=[data["signal_value"]],
                    target_reduction_w=data["target_reduction_w"],
                    actor=request.user,
                )
                if data["publish"]:
                    dr_event_publish(event_pk=event.pk, actor=request.user)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Event {event.event_id} created.")
                return redirect("admin:grid_drevent_change", event.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Create a demand-response event",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/grid/drevent_create.html", context)

    def _run(self, request, queryset, service, verb):
        for event in queryset:
            try:
                service(event_pk=event.pk, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{event.event_id}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{event.event_id}: {verb}.")

    @admin.action(description="Publish / re-publish (notify members)")
    def publish(self, request, queryset):
        self._run(request, queryset, dr_event_publish, "published")

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):
        self._run(request, queryset, dr_event_cancel, "cancelled")

    @admin.action(description="Measure performance and reward")
    def measure(self, request, queryset):
        self._run(request, queryset, dr_event_measure, "measured")


@admin.register(ForecastModelChoice)
class ForecastModelChoiceAdmin(PolicyModelAdmin):
    date_hierarchy = "chosen_at"
    list_display = ("series_key", "method", "chosen_at")
    search_fields = ("series_key",)


@admin.register(Forecast)
class ForecastAdmin(PolicyModelAdmin):
    date_hierarchy = "issued_at"
    raw_id_fields = ("model_choice",)
    list_display = ("series_key", "method", "start", "issued_at")
    search_fields = ("series_key",)


@admin.register(StabilityAssessment)
class StabilityAssessmentAdmin(PolicyModelAdmin):
    date_hierarchy = "interval_start"
    list_display = ("interval_start", "source", "score", "max_loading_percent", "min_vm_pu")
    list_filter = ("source",)


@admin.register(GridAlert)
class GridAlertAdmin(PolicyModelAdmin):
    date_hierarchy = "created_at"
    list_display = ("interval_start", "source", "kind", "subject", "message")
    list_filter = ("kind", "source")


@admin.register(ChargePoint)
class ChargePointAdmin(PolicyModelAdmin):
    date_hierarchy = "last_seen_at"
    raw_id_fields = ("device",)
    service_owned = True  # written only by the OCPP central system and its services
    list_display = ("ocpp_id", "status", "protocol", "connector_status", "device", "last_seen_at")
    list_filter = ("status", "protocol")
    search_fields = ("ocpp_id",)
    exclude = ("password_hash",)


@admin.register(ChargingSession)
class ChargingSessionAdmin(PolicyModelAdmin):
    date_hierarchy = "started_at"
    autocomplete_fields = ("member",)
    raw_id_fields = ("charge_point", "token")
    service_owned = True
    list_display = ("charge_point", "transaction_id", "member", "started_at", "stopped_at")
    search_fields = ("charge_point__ocpp_id", "transaction_id")


@admin.register(OpenADRVen)
class OpenADRVenAdmin(PolicyModelAdmin):
    date_hierarchy = "registered_at"
    raw_id_fields = ("connection_point",)
    service_owned = True  # provisioned by openadr_ven_provision, registered by the VTN
    list_display = ("ven_name", "ven_id", "connection_point", "registered_at", "last_seen_at")
    search_fields = ("ven_name", "ven_id")
