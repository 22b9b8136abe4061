"""Admin of governance: staff prepare assemblies and proposals and open/close the votes;
auditors read. Participations and ballots are read-only for everybody, in two lists that share
no column but the proposal (the ballot list is in receipt-hash order, with no member and no
time)."""

from __future__ import annotations

from django.contrib import admin, messages

from apps.accounts.policy import PolicyModelAdmin
from apps.core.exceptions import ApplicationError
from apps.governance import services
from apps.governance.models import (
    Assembly,
    Ballot,
    Participation,
    Proposal,
    ProposalType,
    Proxy,
)


@admin.register(ProposalType)
class ProposalTypeAdmin(PolicyModelAdmin):
    list_display = (
        "code",
        "name",
        "quorum_percent",
        "majority_numerator",
        "majority_denominator",
        "majority_strict",
    )


@admin.register(Assembly)
class AssemblyAdmin(PolicyModelAdmin):
    search_fields = ("title",)
    list_display = ("title", "held_on", "status")
    list_filter = ("status",)
    date_hierarchy = "held_on"
    readonly_fields = ("status",)
    actions = ["open_assemblies", "close_assemblies"]

    def save_model(self, request, obj, form, change):
        services.assembly_save(assembly=obj, actor=request.user)

    @admin.action(description="Open the selected assemblies")
    def open_assemblies(self, request, queryset):
        self._run(request, queryset, services.assembly_open)

    @admin.action(description="Close the selected assemblies (tallies every open proposal)")
    def close_assemblies(self, request, queryset):
        self._run(request, queryset, services.assembly_close)

    def _run(self, request, queryset, service):
        for assembly in queryset:
            try:
                service(assembly_id=assembly.pk, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{assembly}: {exc.message}", messages.ERROR)


@admin.register(Proposal)
class ProposalAdmin(PolicyModelAdmin):
    list_display = (
        "title",
        "assembly",
        "type",
        "status",
        "participants",
        "yes",
        "no",
        "abstain",
        "passed",
    )
    list_filter = ("status", "type")
    date_hierarchy = "opened_at"
    autocomplete_fields = ("assembly",)
    raw_id_fields = ("type",)
    readonly_fields = (
        "status",
        "opened_at",
        "closed_at",
        "eligible_count",
        "participants",
        "yes",
        "no",
        "abstain",
        "quorum_met",
        "passed",
        "ballots_root",
        "anchor_intent_id",
    )
    actions = ["open_voting", "close_voting"]

    def save_model(self, request, obj, form, change):
        services.proposal_save(proposal=obj, actor=request.user)

    @admin.action(description="Open voting on the selected proposals")
    def open_voting(self, request, queryset):
        self._run(request, queryset, services.proposal_open)

    @admin.action(description="Close voting: tally and anchor the ballots' root")
    def close_voting(self, request, queryset):
        self._run(request, queryset, services.proposal_close)

    def _run(self, request, queryset, service):
        for proposal in queryset:
            try:
                service(proposal_id=proposal.pk, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{proposal}: {exc.message}", messages.ERROR)


@admin.register(Participation)
class ParticipationAdmin(PolicyModelAdmin):
    """Who took part (never what they chose)."""

    service_owned = True
    list_display = ("proposal", "member", "cast_by")
    list_filter = ("proposal",)
    raw_id_fields = ("proposal", "member", "cast_by")


@admin.register(Ballot)
class BallotAdmin(PolicyModelAdmin):
    """What was chosen (never by whom): the publishable list behind the anchored root."""

    service_owned = True
    list_display = ("receipt_hash", "proposal", "choice")
    list_filter = ("proposal", "choice")
    ordering = ("proposal", "receipt_hash")
    raw_id_fields = ("proposal",)
    show_full_result_count = False


@admin.register(Proxy)
class ProxyAdmin(PolicyModelAdmin):
    service_owned = True
    list_display = ("assembly", "grantor", "holder", "created_at")
    list_filter = ("assembly",)
    date_hierarchy = "created_at"
    raw_id_fields = ("assembly", "grantor", "holder")
