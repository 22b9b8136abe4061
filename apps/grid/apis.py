"""DRF endpoints of the grid app: a member's DR events (OpenADR-style: list, answer optIn /
optOut) — only their own sites, 404 otherwise — and the current dispatch plan for staff."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.policy import MemberApiPermission, StaffApiPermission
from apps.grid import selectors
from apps.grid.models import DispatchPlan, DRParticipation
from apps.grid.services import dr_opt_set


class ParticipationSerializer(serializers.ModelSerializer):
    event_pk = serializers.IntegerField(source="event.pk")
    event_id = serializers.CharField(source="event.event_id")
    modification_number = serializers.IntegerField(source="event.modification_number")
    status = serializers.CharField(source="event.status")
    signal_name = serializers.CharField(source="event.signal_name")
    signal_type = serializers.CharField(source="event.signal_type")
    intervals = serializers.JSONField(source="event.intervals")
    start = serializers.DateTimeField(source="event.start")
    end = serializers.DateTimeField(source="event.end")
    site = serializers.CharField(source="connection_point.code")

    class Meta:
        model = DRParticipation
        fields = [
            "event_pk",
            "event_id",
            "modification_number",
            "status",
            "signal_name",
            "signal_type",
            "intervals",
            "start",
            "end",
            "site",
            "opt",
            "baseline_wh",
            "actual_wh",
            "delivered_wh",
            "reward_tokens",
        ]
        read_only_fields = fields


class OptInput(serializers.Serializer):
    opt = serializers.ChoiceField(choices=[DRParticipation.Opt.OPT_IN, DRParticipation.Opt.OPT_OUT])


def _member(request: Request):
    member = getattr(request.user, "member", None)
    if member is None:
        raise Http404("Only members take part in demand-response events.")
    return member


class MemberEventsApi(APIView):
    permission_classes = [MemberApiPermission]

    @extend_schema(responses=ParticipationSerializer(many=True))
    def get(self, request: Request) -> Response:
        parts = selectors.member_dr_participations(member=_member(request))[:200]
        return Response(ParticipationSerializer(parts, many=True).data)


class MemberEventOptApi(APIView):
    permission_classes = [MemberApiPermission]

    @extend_schema(request=OptInput, responses=ParticipationSerializer)
    def post(self, request: Request, pk: int) -> Response:
        member = _member(request)
        selectors.member_dr_participation_get(member=member, event_pk=pk)  # 404 if not theirs
        data = OptInput(data=request.data)
        data.is_valid(raise_exception=True)
        part = dr_opt_set(
            member=member, event_pk=pk, opt=data.validated_data["opt"], actor=request.user
        )
        return Response(ParticipationSerializer(part).data)


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = DispatchPlan
        fields = [
            "id",
            "start",
            "step_seconds",
            "intervals",
            "status",
            "cost",
            "unmanaged_cost",
            "solve_seconds",
            "binding",
            "message",
            "transformer_flows_w",
            "unmanaged_flows_w",
            "prices",
        ]
        read_only_fields = fields


class CurrentPlanApi(APIView):
    permission_classes = [StaffApiPermission]

    @extend_schema(responses=PlanSerializer)
    def get(self, request: Request) -> Response:
        plan = selectors.current_plan()
        if plan is None:
            raise Http404("No dispatch plan yet.")
        return Response(PlanSerializer(plan).data)
