from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.policy import (
    Capability,
    portal_view,
    public_view,
    reports_view,
    request_allows,
)
from apps.accounts.selectors import member_for_user, member_for_user_or_none
from apps.accounts.services import wallet_challenge_issue, wallet_link
from apps.core.exceptions import ApplicationError
from apps.core.replica import replica_reads
from apps.meters.selectors import member_readings_version
from apps.portal.health import health_report
from apps.portal.navigation import section_by_slug
from apps.portal.selectors import member_dashboard, member_sites_overview

# The meters app's live-update include (WebSocket) on the dashboard.
LIVE_TEMPLATE = "meters/_live.html"


@public_view  # load balancers probe it anonymously
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 only when every component is up. Anyone learns up or down; the components and their
    error texts (which can name hosts, URLs and configuration) only staff and auditors."""
    report = health_report()
    healthy = all(state == "ok" for state in report.values())
    body: dict = {"status": "ok" if healthy else "degraded"}
    if request_allows(request, Capability.STAFF_READ):
        body["components"] = report
    return JsonResponse(body, status=200 if healthy else 503)


@portal_view
def dashboard(request: HttpRequest) -> HttpResponse:
    member = member_for_user_or_none(request.user)
    context: dict = {"member": member, "data": None}
    if member is not None:
        # The member's readings: written by ingest, never by the viewer (apps/core/replica.py).
        with replica_reads():
            now = timezone.now()
            # Cached per member until new readings of their meters land (docs/scaling.md).
            version = member_readings_version(member=member)
            data = member_dashboard(member=member, now=now, version=version)
            context["sites"] = member_sites_overview(member=member, now=now, version=version)
        context["data"] = data if data["has_readings"] else None
        context["live_template"] = LIVE_TEMPLATE
    return render(request, "portal/dashboard.html", context)


@portal_view
def coming(request: HttpRequest, section: str) -> HttpResponse:
    """Every section is built: an old "coming" link leads to the section's page."""
    nav_section = section_by_slug().get(section)
    if nav_section is None:
        raise Http404("Unknown section.")
    return redirect(nav_section.url_name)


@reports_view
def auditor_area(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/auditor.html", {})


@portal_view
def my_profile(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    return render(request, "portal/profile.html", {"member": member})


def _siwe_origin(request: HttpRequest) -> tuple[str, str]:
    """(domain, uri) for Sign-In with Ethereum messages: this site's host and the wallet page."""
    return request.get_host(), request.build_absolute_uri(reverse("portal:wallet"))


@portal_view
def wallet(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    return render(request, "portal/wallet.html", {"member": member, "step": "address"})


@portal_view
@require_POST
def wallet_challenge(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    domain, uri = _siwe_origin(request)
    address = request.POST.get("address", "")
    context: dict = {"member": member, "address": address}
    try:
        message = wallet_challenge_issue(user=request.user, address=address, domain=domain, uri=uri)
    except ApplicationError as exc:
        context.update(step="address", error=exc.message)
        return render(request, "portal/wallet.html", context, status=400)
    context.update(step="sign", message=message.to_text(), address=message.address)
    return render(request, "portal/wallet.html", context)


@portal_view
@require_POST
def wallet_link_submit(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    domain, _uri = _siwe_origin(request)
    message = request.POST.get("message", "")
    signature = request.POST.get("signature", "")
    try:
        wallet_link(user=request.user, message=message, signature=signature, domain=domain)
    except ApplicationError as exc:
        context = {"member": member, "step": "sign", "message": message, "error": exc.message}
        return render(request, "portal/wallet.html", context, status=400)
    messages.success(request, "Your wallet is linked to your membership.")
    return redirect("portal:wallet")
