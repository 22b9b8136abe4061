"""Portal pages of billing. Members see only their own issued documents and account (selectors
filter by the logged-in member; anything else is 404): `@portal_view`. Staff pages are
`@staff_view`: auditors read, staff with MFA write (apps/accounts/policy.py)."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.policy import portal_view, public_view, staff_view
from apps.accounts.selectors import member_for_user
from apps.accounts.throttling import anonymous_form_throttled
from apps.billing import selectors, services
from apps.billing.documents import invoice_pdf as render_invoice_pdf
from apps.billing.forms import JoinForm, SiteMoveForm
from apps.billing.models import SiteMove
from apps.billing.services.membership import JoinData, mandate_text, share_price
from apps.core.exceptions import ApplicationError


@portal_view
def invoices(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    return render(
        request,
        "billing/invoices.html",
        {
            "invoices": selectors.member_invoices(member=member),
            "balance": selectors.member_balance(member=member),
            "ledger": selectors.member_ledger(member=member),
            "emails": selectors.member_emails(member=member),
        },
    )


@portal_view
def invoice_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    member = member_for_user(request.user)
    invoice = selectors.member_invoice_get(member=member, invoice_id=pk)
    response = HttpResponse(render_invoice_pdf(invoice=invoice), "application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
    return response


@staff_view
def staff_runs(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            period = services.parse_period(request.POST.get("period", ""))
            if action in ("run", "dry_run"):
                summary = services.billing_run(
                    period=period, dry_run=action == "dry_run", actor=request.user
                )
                label = "Dry run" if action == "dry_run" else "Billing run"
                messages.success(
                    request,
                    f"{label} {summary['period']}: {summary['invoices']} invoices, "
                    f"gross {summary['total_gross']}, direct debit "
                    f"{summary['direct_debit_total']}, payouts {summary['payout_total']}.",
                )
                if summary["without_contract"]:
                    messages.warning(
                        request,
                        "Settled energy but no supply contract (not invoiced): "
                        + ", ".join(x["member"] for x in summary["without_contract"])
                        + ".",
                    )
            elif action == "review":
                n = services.invoices_review(period=period, actor=request.user)
                messages.success(request, f"{n} invoices reviewed.")
            elif action == "issue":
                n = services.invoices_issue(period=period, actor=request.user)
                messages.success(request, f"{n} invoices issued.")
            elif action == "sepa":
                result = services.sepa_files_create(period=period, actor=request.user)
                files = ", ".join(f"{f['name']} ({f['total']})" for f in result["files"])
                messages.success(request, f"SEPA files: {files or 'nothing new to send'}.")
                if result["missing_mandate"]:
                    messages.warning(
                        request,
                        "No active mandate: " + ", ".join(result["missing_mandate"]) + ".",
                    )
            else:
                messages.error(request, "Unknown action.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("billing:staff_runs")
    return render(
        request,
        "billing/staff_runs.html",
        {"runs": selectors.billing_runs(), "files": selectors.period_sepa_files_recent()},
    )


@staff_view
def sepa_file(request: HttpRequest, pk: int) -> HttpResponse:
    sepa = selectors.sepa_file_get(pk=pk)
    response = HttpResponse(sepa.content, "application/xml")
    response["Content-Disposition"] = f'attachment; filename="{sepa.name}"'
    return response


@staff_view
def staff_bank(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        upload = request.FILES.get("statement")
        if upload is None:
            messages.error(request, "Choose a camt.053 file to import.")
        else:
            try:
                statement = services.bank_statement_import(
                    content=upload.read(), actor=request.user
                )
            except ApplicationError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request,
                    f"Statement {statement.message_id} imported: {statement.entry_count} entries.",
                )
        return redirect("billing:staff_bank")
    return render(
        request, "billing/staff_bank.html", {"unmatched": selectors.unmatched_bank_transactions()}
    )


@staff_view
@require_POST
def staff_bank_assign(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = selectors.issued_invoice_by_number(number=request.POST.get("invoice", ""))
    try:
        if invoice is None:
            raise ApplicationError("No issued invoice has that number.")
        services.bank_transaction_assign(transaction_id=pk, invoice=invoice, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Matched to {invoice.number}.")
    return redirect("billing:staff_bank")


@staff_view
def staff_aging(request: HttpRequest) -> HttpResponse:
    today: date = timezone.localdate()
    return render(
        request,
        "billing/staff_aging.html",
        {
            "rows": selectors.aging_report(today=today),
            "buckets": selectors.AGING_BUCKETS,
            "today": today,
        },
    )


# --- Joining (public) -------------------------------------------------------------------------


@public_view
def join(request: HttpRequest) -> HttpResponse:
    """The public join page. Whatever the e-mail address, a valid form gets the same answer
    ("check your inbox"), so the page does not tell who is already registered. Submissions are
    limited per client address (MEMBERSHIP_JOIN_RATE_PER_HOUR, 429 beyond, nothing stored)."""
    form = JoinForm(request.POST or None)
    context = {
        "form": form,
        "mandate_text": mandate_text(),
        "mandate_version": settings.MEMBERSHIP_MANDATE_TEXT_VERSION,
        "privacy_version": settings.MEMBERSHIP_PRIVACY_POLICY_VERSION,
        "share_price": share_price(),
        "currency": settings.BILLING_CURRENCY,
    }
    if request.method != "POST":
        return render(request, "billing/join.html", context)
    if anonymous_form_throttled(
        request, scope="join", limit=settings.MEMBERSHIP_JOIN_RATE_PER_HOUR, window_seconds=3600
    ):
        return render(request, "billing/join.html", {**context, "throttled": True}, status=429)
    if not form.is_valid():
        return render(request, "billing/join.html", context, status=400)
    d = form.cleaned_data
    pv = d.get("pv_kwp")
    data = JoinData(
        legal_name=d["legal_name"].strip(),
        email=d["email"],
        street=d["street"].strip(),
        postal_code=d["postal_code"].strip(),
        city=d["city"].strip(),
        country=d["country"],
        site_street=d["site_street"].strip(),
        site_postal_code=d["site_postal_code"].strip(),
        site_city=d["site_city"].strip(),
        expected_annual_wh=d["expected_kwh"] * 1000,
        pv_peak_w=int(pv * 1000) if pv else None,
        account_holder=d["account_holder"].strip(),
        iban=d["iban"],
        bic=d["bic"],
        shares=d["shares"],
        mandate_consent=d["mandate_consent"],
        privacy_consent=d["privacy_consent"],
    )
    try:
        services.join_apply(data=data, base_url=request.build_absolute_uri("/"))
    except ApplicationError as exc:
        form.add_error(None, str(exc))
        return render(request, "billing/join.html", context, status=400)
    return render(request, "billing/join_sent.html", {"email": d["email"]})


@public_view
def join_verify(request: HttpRequest) -> HttpResponse:
    """The link of the verification e-mail (a signed, expiring token in `?token=`)."""
    try:
        application = services.join_verify(token=request.GET.get("token", ""))
    except ApplicationError as exc:
        return render(request, "billing/join_verified.html", {"error": str(exc)}, status=400)
    return render(request, "billing/join_verified.html", {"application": application})


@staff_view
def staff_moves(request: HttpRequest) -> HttpResponse:
    """Move out / move in at a site: the form, then a confirmation page showing what will happen;
    only the confirming POST (`confirm=yes`) moves (`services.site_move`). Auditors see the
    list of moves and no form."""
    staged = request.method == "POST" and request.POST.get("stage") == "confirm"
    form = SiteMoveForm(request.POST if staged else None)
    summary: list[tuple[str, str]] = []
    if staged and form.is_valid():
        data = form.cleaned_data
        point = data["connection_point"]
        if request.POST.get("confirm") == "yes":
            try:
                move = services.site_move(
                    connection_point=point, leaving_member=point.member,
                    incoming_member=data["incoming_member"], at=data["at"],
                    final_reading=data["final_reading"], tariff=data["tariff"],
                    actor=request.user,
                )  # fmt: skip
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request, f"Move recorded at {point.code}, {move.at:%Y-%m-%d %H:%M} UTC."
                )
                return redirect("billing:staff_moves")
        if form.is_valid():
            incoming = data["incoming_member"]
            summary = [
                ("Site", point.code),
                ("Moves out", str(point.member)),
                ("Moves in", str(incoming) if incoming else "nobody (the site stands empty)"),
                ("At", f"{data['at']:%Y-%m-%d %H:%M} UTC"),
                ("Final meter readings", SiteMove.FinalReading(data["final_reading"]).label),
            ]
    return render(
        request,
        "billing/staff_moves.html",
        {"form": form, "summary": summary, "moves": selectors.site_moves_recent()},
    )
