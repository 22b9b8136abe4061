"""Portal pages: the member's certificate wallet and rewards; the staff/auditor registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.policy import portal_view, reports_view, staff_view
from apps.accounts.selectors import member_for_user
from apps.core.exceptions import ApplicationError
from apps.incentives.models import Certificate
from apps.incentives.selectors import (
    member_asset_shares,
    member_certificate_get,
    member_certificate_totals,
    member_certificates,
    member_claim_instruction,
    member_redeemable_tokens,
    member_redemptions,
    member_reward_totals,
    member_rewards,
    member_shared_plant_credits,
    registry_certificates,
)
from apps.incentives.services import (
    certificate_cancel,
    certificate_claim,
    certificates_claim_for_consumption,
    claim_instruction_set,
    reward_redeem,
)


@portal_view
@require_http_methods(["GET"])
def certificates(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    status = request.GET.get("status") or ""
    page = Paginator(member_certificates(member=member, status=status or None), 100).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "incentives/certificates.html",
        {
            "member": member,
            "page": page,
            "status": status,
            "statuses": Certificate.Status.choices,
            "totals": _totals_rows(member_certificate_totals(member=member)),
            "month": datetime.now(UTC).strftime("%Y-%m"),
            "auto_claim": member_claim_instruction(member=member),
        },
    )


def _totals_rows(totals: dict[str, int]) -> list[tuple[str, str, int]]:
    return [
        (key, label, totals.get(key, 0))
        for key, label in Certificate.Status.choices
        if key != Certificate.Status.TRANSFERRED
    ]


@portal_view
@require_POST
def certificate_claim_view(request: HttpRequest, pk: int) -> HttpResponse:
    member = member_for_user(request.user)
    cert = member_certificate_get(member=member, certificate_id=pk)  # 404 unless mine
    wh_raw = (request.POST.get("wh") or "").strip()
    try:
        wh = int(wh_raw) if wh_raw else None
        part = certificate_claim(
            certificate_id=cert.pk,
            member=member,
            beneficiary=request.POST.get("beneficiary") or member.legal_name,
            wh=wh,
            actor=request.user,
        )
        messages.success(request, f"Claimed {part.wh} Wh for {part.beneficiary}.")
    except ValueError:
        messages.error(request, "Wh must be a whole number.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("incentives:certificates")


@portal_view
@require_POST
def certificates_claim_month(request: HttpRequest) -> HttpResponse:
    """Claim my certificates against my own consumption, hour by hour, for one month."""
    member = member_for_user(request.user)
    try:
        start = datetime.strptime(request.POST.get("month", "") + "-01", "%Y-%m-%d").replace(
            tzinfo=UTC
        )
    except ValueError:
        messages.error(request, "Choose a month (YYYY-MM).")
        return redirect("incentives:certificates")
    end = (start + timedelta(days=32)).replace(day=1)
    claimed = certificates_claim_for_consumption(
        member=member,
        start=start,
        end=end,
        beneficiary=request.POST.get("beneficiary") or member.legal_name,
        actor=request.user,
    )
    total = sum(c.wh for c in claimed)
    messages.success(
        request, f"Claimed {total} Wh in {len(claimed)} certificate(s) against your consumption."
    )
    return redirect("incentives:certificates")


@portal_view
@require_http_methods(["GET"])
def rewards(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    return render(
        request,
        "incentives/rewards.html",
        {
            "member": member,
            "rewards": member_rewards(member=member)[:200],
            "totals": member_reward_totals(member=member),
            "redeemable": member_redeemable_tokens(member=member),
            "redemptions": member_redemptions(member=member)[:50],
        },
    )


@portal_view
@require_POST
def rewards_redeem(request: HttpRequest) -> HttpResponse:
    """Redeem reward tokens for a credit on my next invoice (burned on chain)."""
    member = member_for_user(request.user)
    try:
        tokens = int((request.POST.get("tokens") or "").strip())
        redemption = reward_redeem(member=member, tokens=tokens, actor=request.user)
        messages.success(
            request,
            f"{redemption.tokens} token(s) redeemed: they are burned on chain and credited on "
            "your next invoice.",
        )
    except ValueError:
        messages.error(request, "Tokens must be a whole number.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("incentives:rewards")


@reports_view
@require_http_methods(["GET"])
def registry(request: HttpRequest) -> HttpResponse:
    month = request.GET.get("month") or datetime.now(UTC).strftime("%Y-%m")
    try:
        start = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month = start.strftime("%Y-%m")
    end = (start + timedelta(days=32)).replace(day=1)
    status = request.GET.get("status") or None
    page = Paginator(registry_certificates(start=start, end=end, status=status), 100).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "incentives/registry.html",
        {
            "page": page,
            "month": month,
            "status": status or "",
            "statuses": Certificate.Status.choices,
        },
    )


@staff_view
@require_POST
def registry_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        certificate_cancel(
            certificate_id=pk, reason=request.POST.get("reason") or "", actor=request.user
        )
        messages.success(request, f"Certificate {pk} cancelled.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("incentives:registry")


@portal_view
@require_POST
def certificates_auto_claim_set(request: HttpRequest) -> HttpResponse:
    """Turn my standing claim instruction on or off."""
    member = member_for_user(request.user)
    on = bool(request.POST.get("auto_claim"))
    claim_instruction_set(member=member, auto_claim=on, actor=request.user)
    messages.success(
        request,
        "Your certificates are claimed every hour against your own consumption."
        if on
        else "Automatic claiming is off: your certificates stay active until you claim them.",
    )
    return redirect("incentives:certificates")


@portal_view
@require_http_methods(["GET"])
def shared_plants(request: HttpRequest) -> HttpResponse:
    """My shares in the community plants, their production and my credit per month."""
    member = member_for_user(request.user)
    return render(
        request,
        "incentives/shared_plants.html",
        {
            "shares": member_asset_shares(member=member),
            "credits": member_shared_plant_credits(member=member),
        },
    )
