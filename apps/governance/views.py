"""Portal pages of governance: assemblies and proposals, voting (the receipt is shown once),
receipt verification (page and JSON), results, and proxies."""

from __future__ import annotations

from dataclasses import asdict

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.accounts.policy import portal_view
from apps.accounts.selectors import member_for_user, member_for_user_or_none
from apps.core.exceptions import ApplicationError
from apps.governance import selectors, services
from apps.governance.models import Assembly, Ballot, Proposal


def _proposal(pk: int) -> Proposal:
    try:
        return selectors.proposal_visible(proposal_id=pk)
    except Proposal.DoesNotExist as exc:
        raise Http404("No such proposal.") from exc


@portal_view
def index(request: HttpRequest) -> HttpResponse:
    member = member_for_user_or_none(request.user)
    return render(
        request,
        "governance/index.html",
        {
            "assemblies": selectors.assemblies_visible(),
            "voted": selectors.member_voted_proposal_ids(member=member) if member else set(),
            "proxies_held": selectors.member_proxies_held(member=member) if member else [],
        },
    )


@portal_view
@require_http_methods(["GET", "POST"])
def proposal(request: HttpRequest, pk: int) -> HttpResponse:
    item = _proposal(pk)
    member = member_for_user_or_none(request.user)
    if request.method == "POST":
        member = member_for_user(request.user)
        for_number = request.POST.get("for_member", "").strip()
        for_member = None
        if for_number and for_number != member.membership_number:
            for_member = selectors.member_by_number(membership_number=for_number)
            if for_member is None:
                messages.error(request, "You hold no proxy of this member for this assembly.")
                return redirect("governance:proposal", pk=pk)
        try:
            receipt = services.vote_cast(
                voter=member,
                proposal_id=item.pk,
                choice=request.POST.get("choice", ""),
                for_member=for_member,
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("governance:proposal", pk=pk)
        return render(request, "governance/receipt.html", {"proposal": item, "receipt": receipt})
    voted = selectors.member_voted_proposal_ids(member=member) if member else set()
    proxies = (
        selectors.member_proxies_held(member=member, assembly_id=item.assembly_id) if member else []
    )
    closed = item.status == Proposal.Status.CLOSED
    return render(
        request,
        "governance/proposal.html",
        {
            "proposal": item,
            "choices": Ballot.Choice.choices,
            "has_voted": item.pk in voted,
            "can_vote": member is not None
            and member.is_active_member
            and item.status == Proposal.Status.OPEN,
            "proxies": proxies,
            "ballots": (
                [("0x" + r.hex(), c) for r, c in selectors.proposal_ballots(proposal_id=item.pk)]
                if closed
                else []
            ),
        },
    )


@portal_view
def verify(request: HttpRequest, pk: int) -> HttpResponse:
    """Check a receipt: GET ?choice=…&secret=… (add &format=json for the JSON answer)."""
    item = _proposal(pk)
    check = None
    if request.GET.get("secret"):
        check = selectors.receipt_check(
            proposal=item, choice=request.GET.get("choice", ""), secret_hex=request.GET["secret"]
        )
        if request.GET.get("format") == "json":
            return JsonResponse(asdict(check))
    return render(request, "governance/verify.html", {"proposal": item, "check": check})


@portal_view
@require_http_methods(["GET", "POST"])
def proxies(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    open_assemblies = list(Assembly.objects.exclude(status=Assembly.Status.CLOSED))
    if request.method == "POST":
        try:
            assembly_id = int(request.POST.get("assembly", "0"))
            if request.POST.get("revoke"):
                services.proxy_revoke(grantor=member, assembly_id=assembly_id)
                messages.success(request, "Your proxy is withdrawn.")
            else:
                holder = selectors.member_by_number(
                    membership_number=request.POST.get("holder", "")
                )
                if holder is None:
                    raise ApplicationError("No member has this membership number.")
                services.proxy_grant(grantor=member, holder=holder, assembly_id=assembly_id)
                messages.success(request, "Your proxy is given.")
        except (ValueError, ApplicationError) as exc:
            messages.error(request, getattr(exc, "message", "Choose an assembly."))
        return redirect("governance:proxies")
    given = [
        (a, selectors.member_proxy_given(member=member, assembly_id=a.pk)) for a in open_assemblies
    ]
    return render(
        request,
        "governance/proxies.html",
        {"given": given, "held": selectors.member_proxies_held(member=member)},
    )
