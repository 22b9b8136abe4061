from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import timezone

from apps.accounts.navigation import section_by_slug
from apps.accounts.selectors import member_for_user, user_is_auditor


def _dashboard_data(member, now) -> dict | None:
    """Real readings from apps.meters.selectors once the meters app provides them."""
    try:
        from apps.meters.selectors import member_dashboard_data
    except ImportError:
        return None
    return member_dashboard_data(member=member, now=now)


def _live_template() -> str | None:
    """The meters app's live-update include (WebSocket), once it exists."""
    try:
        get_template("meters/_live.html")
    except TemplateDoesNotExist:
        return None
    return "meters/_live.html"


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    member = getattr(request.user, "member", None) if hasattr(request.user, "member") else None
    context: dict = {"member": member, "data": None, "meters_available": True}
    if member is not None:
        data = _dashboard_data(member, timezone.now())
        context["data"] = data
        context["meters_available"] = data is not None
        context["live_template"] = _live_template()
    return render(request, "portal/dashboard.html", context)


@login_required
def coming(request: HttpRequest, section: str) -> HttpResponse:
    nav_section = section_by_slug().get(section)
    if nav_section is None:
        raise Http404("Unknown section.")
    return render(request, "portal/coming.html", {"section": nav_section})


@login_required
def auditor_area(request: HttpRequest) -> HttpResponse:
    if not user_is_auditor(request.user):
        raise PermissionDenied("Auditors only.")
    return render(request, "portal/auditor.html", {})


@login_required
def my_profile(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    return render(request, "portal/profile.html", {"member": member})
