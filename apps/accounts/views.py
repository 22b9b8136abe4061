from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.navigation import section_by_slug
from apps.accounts.policy import portal_view, reports_view
from apps.accounts.selectors import (
    member_dashboard,
    member_for_user,
    member_for_user_or_none,
)
from apps.accounts.services import wallet_challenge_issue, wallet_link
from apps.core.exceptions import ApplicationError


def _live_template() -> str | None:
    """The meters app's live-update include (WebSocket), once it exists."""
    try:
        get_template("meters/_live.html")
    except TemplateDoesNotExist:
        return None
    return "meters/_live.html"


@portal_view
def dashboard(request: HttpRequest) -> HttpResponse:
    member = member_for_user_or_none(request.user)
    context: dict = {"member": member, "data": None, "meters_available": True}
    if member is not None:
        data = member_dashboard(member=member, now=timezone.now())
        context["data"] = data if data and data["has_readings"] else None
        context["meters_available"] = data is not None
        context["live_template"] = _live_template()
    return render(request, "portal/dashboard.html", context)


@portal_view
def coming(request: HttpRequest, section: str) -> HttpResponse:
    nav_section = section_by_slug().get(section)
    if nav_section is None:
        raise Http404("Unknown section.")
    return render(request, "portal/coming.html", {"section": nav_section})


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
