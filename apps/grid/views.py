"""Portal pages: the member's Events page (DR) and the staff grid dashboard."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.policy import portal_view, staff_view
from apps.core.exceptions import ApplicationError
from apps.grid import selectors
from apps.grid.services import dr_opt_set


def _member_or_404(request: HttpRequest):
    member = getattr(request.user, "member", None)
    if member is None:
        raise Http404("Only members take part in demand-response events.")
    return member


@portal_view
@require_GET
def events(request: HttpRequest) -> HttpResponse:
    member = _member_or_404(request)
    parts = list(selectors.member_dr_participations(member=member)[:100])
    return render(
        request,
        "grid/events.html",
        {"participations": parts, "local_tz": settings.COOPERATIVE_TIME_ZONE},
    )


@portal_view
@require_GET
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    member = _member_or_404(request)
    part = selectors.member_dr_participation_get(member=member, event_pk=pk)
    return render(
        request,
        "grid/event_detail.html",
        {"part": part, "event": part.event, "local_tz": settings.COOPERATIVE_TIME_ZONE},
    )


@portal_view
@require_POST
def event_opt(request: HttpRequest, pk: int) -> HttpResponse:
    member = _member_or_404(request)
    selectors.member_dr_participation_get(member=member, event_pk=pk)  # 404 if not theirs
    try:
        part = dr_opt_set(
            member=member, event_pk=pk, opt=request.POST.get("opt", ""), actor=request.user
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"You are {'in' if part.opt == 'optIn' else 'out'} for event {part.event.event_id}.",
        )
    return redirect("grid:event_detail", pk=pk)


@staff_view
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    plan = selectors.current_plan()
    measured = selectors.latest_measured_assessment()
    context = {
        "measured": measured,
        "lowest_voltages": selectors.lowest_voltages(measured),
        "tree": selectors.topology_tree(),
        "loading": selectors.latest_transformer_loading(),
        "plan": plan,
        "command_counts": selectors.command_status_counts(plan=plan) if plan else {},
        "events": selectors.dr_events_with_performance(limit=10),
        "alerts": selectors.recent_alerts(since=now - timedelta(days=1)),
        "choices": selectors.model_choices(),
        "chargers": selectors.charge_points_status(now=now),
        "vens": selectors.openadr_vens_status(now=now),
        "unresponsive": selectors.unresponsive_devices(),
    }
    return render(request, "grid/dashboard.html", context)


@staff_view
@require_GET
def dashboard_data(request: HttpRequest) -> JsonResponse:
    """Chart data: community forecast vs actual, planned transformer flows vs capacity."""
    return JsonResponse(selectors.dashboard_chart_data(now=timezone.now()))
