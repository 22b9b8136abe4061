"""Membership: joining at /join/ (application, e-mail verification, staff approval or
rejection), more sites for a member, and leaving (final invoice, share capital refund).

The status pipeline of the member itself (applicant → active → suspended → active / left) is
`apps.accounts.services.member_status_change`; this module adds what the cooperative's
economics need at each step: on approval the first site and its supply contract, the SEPA
mandate the applicant consented to, the share capital invoice and the account invitation; on
leaving the contracts' end, the final invoice and the share capital refund."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Member, User
from apps.accounts.selectors import member_email_taken
from apps.accounts.services import (
    member_applicant_create,
    member_invitation_send,
    member_status_change,
)
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.billing import invoicing
from apps.billing.lock_objects import join_application_lock, member_open_contracts_lock
from apps.billing.models import (
    Invoice,
    InvoiceLine,
    JoinApplication,
    PaymentMethod,
    SupplyContract,
    SupplyTariff,
)
from apps.billing.selectors import (
    contracts_active,
    invoice_lines_compute,
    month_days,
    period_invoice,
)
from apps.billing.services.invoices import invoice_credit, invoice_issue, invoice_review
from apps.billing.services.payments import _account, mandate_create
from apps.billing.services.runs import invoice_lines_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.grid.models import ConnectionPoint, Transformer
from apps.grid.services import connection_point_create

VERIFY_SALT = "membership.join.verify"

#: The SEPA core mandate text the applicant agrees to (its version is a setting).
MANDATE_TEXT = (
    "By signing this mandate form, you authorise {creditor} to send instructions to your bank to "
    "debit your account and your bank to debit your account in accordance with the instructions "
    "from {creditor}. As part of your rights, you are entitled to a refund from your bank under "
    "the terms and conditions of your agreement with your bank. A refund must be claimed within "
    "8 weeks starting from the date on which your account was debited."
)


def mandate_text() -> str:
    return MANDATE_TEXT.format(creditor=settings.BILLING_SELLER["name"])


def share_price() -> Decimal:
    return Decimal(str(settings.MEMBERSHIP_SHARE_PRICE)).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class JoinData:
    """What the join form collected (already cleaned by apps.billing.forms.JoinForm)."""

    legal_name: str
    email: str
    street: str
    postal_code: str
    city: str
    country: str
    site_street: str
    site_postal_code: str
    site_city: str
    expected_annual_wh: int
    pv_peak_w: int | None
    account_holder: str
    iban: str
    bic: str
    shares: int
    mandate_consent: bool
    privacy_consent: bool


def _member_number() -> str:
    """A fresh membership number for an online applicant: J + year + 6 random digits."""
    for _ in range(20):
        number = f"J{timezone.localdate():%y}{secrets.randbelow(10**6):06d}"
        if not Member.objects.filter(membership_number=number).exists():
            return number
    raise ApplicationError("No free membership number; try again.")  # pragma: no cover


def join_verify_token(*, application: JoinApplication) -> str:
    return signing.dumps({"a": application.pk, "e": application.email}, salt=VERIFY_SALT)


def _send_verification(*, application: JoinApplication, base_url: str) -> None:
    link = f"{base_url.rstrip('/')}/join/verify/?token={join_verify_token(application=application)}"
    hours = settings.MEMBERSHIP_VERIFY_TTL_HOURS
    email, name = application.email, application.legal_name

    def send() -> None:
        send_mail(
            subject="Confirm your e-mail address to join the cooperative",
            message=(
                f"Dear {name},\n\nthank you for applying to join. Please confirm your e-mail "
                f"address within {hours} hours:\n\n{link}\n\nStaff review your application once "
                "it is confirmed.\n"
            ),
            from_email=None,
            recipient_list=[email],
        )

    transaction.on_commit(send)


def _send_already_registered(*, email: str, base_url: str) -> None:
    def send() -> None:
        send_mail(
            subject="You applied to join with an address we already know",
            message=(
                "Somebody (probably you) applied to join the cooperative with this e-mail "
                "address, which already has an account or an application. Nothing was changed. "
                f"Sign in or reset your password at {base_url.rstrip('/')}/accounts/login/ .\n"
            ),
            from_email=None,
            recipient_list=[email],
        )

    transaction.on_commit(send)


@transaction.atomic
def join_apply(
    *, data: JoinData, base_url: str, now: datetime | None = None
) -> JoinApplication | None:
    """Register an application and e-mail its verification link.

    An e-mail address that is already registered gets the same answer on the page (no
    enumeration): nothing is stored, the address's owner is told by e-mail and the attempt is
    audit-logged without the address. Returns the application, or None for such an attempt."""
    now = now or timezone.now()
    if not data.mandate_consent or not data.privacy_consent:
        raise ApplicationError("Both consents are needed to join.")
    minimum, maximum = settings.MEMBERSHIP_MIN_SHARES, settings.MEMBERSHIP_MAX_SHARES
    if not minimum <= data.shares <= maximum:
        raise ApplicationError(f"Subscribe between {minimum} and {maximum} shares.")
    iban, bic = _account(iban=data.iban, bic=data.bic)
    email = data.email.strip().lower()
    if member_email_taken(email=email):
        audit_log_write(
            event=AuditEvent.JOIN_APPLICATION_DUPLICATE,
            actor="join",
            target_type="accounts.user",
            target_id=str(User.objects.get(email__iexact=email).pk),
        )
        _send_already_registered(email=email, base_url=base_url)
        return None
    member = member_applicant_create(
        email=email,
        legal_name=data.legal_name,
        street=data.street,
        postal_code=data.postal_code,
        city=data.city,
        country=data.country,
        membership_number=_member_number(),
        actor="join",
    )
    application = JoinApplication.objects.create(
        member=member,
        email=email,
        legal_name=data.legal_name,
        street=data.street,
        postal_code=data.postal_code,
        city=data.city,
        country=data.country,
        site_street=data.site_street,
        site_postal_code=data.site_postal_code,
        site_city=data.site_city,
        expected_annual_wh=data.expected_annual_wh,
        pv_peak_w=data.pv_peak_w,
        account_holder=data.account_holder,
        iban=iban,
        bic=bic,
        mandate_text=mandate_text(),
        mandate_text_version=settings.MEMBERSHIP_MANDATE_TEXT_VERSION,
        privacy_policy_version=settings.MEMBERSHIP_PRIVACY_POLICY_VERSION,
        consented_at=now,
        shares=data.shares,
        share_price=share_price(),
        submitted_at=now,
    )
    audit_log_write(
        event=AuditEvent.JOIN_APPLICATION_SUBMITTED,
        actor="join",
        target=application,
        details={
            "membership_number": member.membership_number,
            "shares": data.shares,
            "mandate_text_version": application.mandate_text_version,
            "privacy_policy_version": application.privacy_policy_version,
        },
    )
    _send_verification(application=application, base_url=base_url)
    return application


@transaction.atomic
def join_verify(*, token: str, now: datetime | None = None) -> JoinApplication:
    """Confirm an applicant's e-mail address from the signed link (valid
    MEMBERSHIP_VERIFY_TTL_HOURS). Opening it again is harmless."""
    max_age = timedelta(hours=settings.MEMBERSHIP_VERIFY_TTL_HOURS)
    try:
        payload = signing.loads(token, salt=VERIFY_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise ApplicationError(
            "This confirmation link has expired. Please apply again.", {"token": "expired"}
        ) from exc
    except signing.BadSignature as exc:
        raise ApplicationError("This confirmation link is not valid.", {"token": "bad"}) from exc
    found = JoinApplication.objects.filter(pk=payload.get("a"), email=payload.get("e")).first()
    if found is None:
        raise ApplicationError("This confirmation link is not valid.", {"token": "unknown"})
    application = join_application_lock(found.pk)
    if application.status == JoinApplication.Status.REJECTED:
        raise ApplicationError("This application was closed.", {"token": "closed"})
    if application.status != JoinApplication.Status.PENDING:
        return application
    application.verified_at = now or timezone.now()
    application.transition_to(
        JoinApplication.Status.VERIFIED,
        actor="join",
        event=AuditEvent.JOIN_APPLICATION_VERIFIED,
        update_fields=["verified_at"],
    )
    return application


def default_tariff() -> SupplyTariff:
    tariffs = SupplyTariff.objects.order_by("code")
    if settings.MEMBERSHIP_DEFAULT_TARIFF:
        tariffs = tariffs.filter(code=settings.MEMBERSHIP_DEFAULT_TARIFF)
    tariff = tariffs.first()
    if tariff is None:
        raise ApplicationError("No supply tariff to put the new member's contract on.")
    return tariff


@transaction.atomic
def member_site_add(
    *,
    member: Member,
    transformer: Transformer,
    tariff: SupplyTariff,
    start: date,
    code: str = "",
    street: str = "",
    postal_code: str = "",
    city: str = "",
    expected_annual_wh: int | None = None,
    pv_peak_w: int | None = None,
    payment_method: str = PaymentMethod.DIRECT_DEBIT,
    actor: Actor = None,
) -> tuple[ConnectionPoint, SupplyContract]:
    """A further (or the first) site of a member: the connection point and its own supply
    contract from `start`. Meters are registered to the site as usual (meters app)."""
    if member.status not in (Member.Status.ACTIVE, Member.Status.SUSPENDED):
        raise ApplicationError("Only a member (active or suspended) can be given a site.")
    n = ConnectionPoint.objects.filter(member=member).count() + 1
    code = code or f"{member.membership_number}-S{n}"
    site = connection_point_create(
        member=member,
        transformer=transformer,
        code=code,
        street=street,
        postal_code=postal_code,
        city=city,
        expected_annual_wh=expected_annual_wh,
        pv_peak_w=pv_peak_w,
        actor=actor,
    )
    contract = SupplyContract.objects.create(
        reference=f"C-{code}"[:30],
        member=member,
        connection_point=site,
        tariff=tariff,
        start=start,
        payment_method=payment_method,
    )
    audit_log_write(
        event=AuditEvent.MEMBER_SITE_ADDED,
        actor=actor,
        target=member,
        details={"site": site.code, "contract": contract.reference, "start": str(start)},
    )
    return site, contract


def _share_capital_invoice(
    *, member: Member, shares: int, price: Decimal, actor: Actor, now: datetime
) -> Invoice:
    """The one-off share capital invoice, issued at once (its own series S<year>, gap-free like
    every series; no VAT: share capital is equity)."""
    today = timezone.localdate(now)
    invoice = Invoice.objects.create(
        member=member,
        period=today.replace(day=1),
        kind=Invoice.Kind.SHARE_CAPITAL,
        currency=settings.BILLING_CURRENCY,
        payment_method=PaymentMethod.DIRECT_DEBIT,
        reason=f"{shares} cooperative shares",
    )
    line = invoicing.Line(
        kind=InvoiceLine.Kind.SHARE_CAPITAL,
        description=f"Share capital: {shares} share(s) at {price} {settings.BILLING_CURRENCY}",
        quantity=Decimal(shares),
        unit="share",
        unit_price=price,
        net=(price * shares).quantize(Decimal("0.01")),
        vat_rate=Decimal("0"),
    )
    invoice_lines_write(invoice=invoice, lines=[line])
    invoice = invoice_review(invoice=invoice, actor=actor)
    invoice = invoice_issue(invoice=invoice, actor=actor, now=now)
    audit_log_write(
        event=AuditEvent.SHARE_CAPITAL_INVOICED,
        actor=actor,
        target=member,
        details={"invoice": invoice.number, "shares": shares, "amount": str(invoice.gross)},
    )
    return invoice


@transaction.atomic
def join_approve(
    *,
    application: JoinApplication,
    actor: Actor,
    base_url: str,
    transformer: Transformer,
    tariff: SupplyTariff | None = None,
    now: datetime | None = None,
) -> JoinApplication:
    """Admit a verified applicant: the member becomes active, gets their first site with its
    supply contract, the SEPA mandate they consented to, the share capital invoice (issued) and
    an e-mail with the link to set their password. An unverified application is refused."""
    now = now or timezone.now()
    application = join_application_lock(application.pk)
    if application.status == JoinApplication.Status.PENDING:
        raise ApplicationError(
            "This applicant has not confirmed their e-mail address yet: it cannot be approved.",
            {"application": application.pk},
        )
    if application.status != JoinApplication.Status.VERIFIED:
        raise ApplicationError(
            f"This application is already {application.get_status_display().lower()}.",
            {"application": application.pk},
        )
    member = member_status_change(
        member=application.member,
        status=Member.Status.ACTIVE,
        reason="Join application approved",
        actor=actor,
        now=now,
    )
    today = timezone.localdate(now)
    member_site_add(
        member=member,
        transformer=transformer,
        tariff=tariff or default_tariff(),
        start=today,
        street=application.site_street,
        postal_code=application.site_postal_code,
        city=application.site_city,
        expected_annual_wh=application.expected_annual_wh,
        pv_peak_w=application.pv_peak_w,
        actor=actor,
    )
    mandate_create(
        member=member,
        reference=f"MND-{member.membership_number}",
        signed_on=timezone.localdate(application.consented_at),
        account_holder=application.account_holder,
        iban=application.iban,
        bic=application.bic,
        actor=actor,
    )
    application.share_invoice = _share_capital_invoice(
        member=member,
        shares=application.shares,
        price=application.share_price,
        actor=actor,
        now=now,
    )
    application.decided_at = now
    application.decided_by = actor if isinstance(actor, User) else None
    application.transition_to(
        JoinApplication.Status.APPROVED,
        actor=actor,
        event=AuditEvent.JOIN_APPLICATION_APPROVED,
        details={"membership_number": member.membership_number},
        update_fields=["decided_at", "decided_by", "share_invoice"],
    )
    member_invitation_send(member=member, base_url=base_url, actor=actor)
    return application


@transaction.atomic
def join_reject(
    *, application: JoinApplication, reason: str, actor: Actor, now: datetime | None = None
) -> JoinApplication:
    """Turn an application down with a reason (told to the applicant by e-mail); the applicant
    member moves to left, so the address can be used again only through staff."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("A rejection needs a reason.", {"reason": ["Required."]})
    application = join_application_lock(application.pk)
    application.reason = reason[:200]
    application.decided_at = now
    application.decided_by = actor if isinstance(actor, User) else None
    application.transition_to(
        JoinApplication.Status.REJECTED,
        actor=actor,
        event=AuditEvent.JOIN_APPLICATION_REJECTED,
        details={"reason": reason[:200]},
        update_fields=["reason", "decided_at", "decided_by"],
    )
    member_status_change(
        member=application.member,
        status=Member.Status.LEFT,
        reason=f"Join application rejected: {reason}",
        actor=actor,
        now=now,
    )
    email, name = application.email, application.legal_name

    def send() -> None:
        send_mail(
            subject="Your application to join the cooperative",
            message=f"Dear {name},\n\nwe cannot accept your application: {reason}\n",
            from_email=None,
            recipient_list=[email],
        )

    transaction.on_commit(send)
    return application


def _final_invoice(*, member: Member, left_on: date, actor: Actor) -> Invoice | None:
    """The draft regular invoice of the month the member leaves in: the contracts' days up to
    the last one (standing charges pro rata) now; the month's billing run refreshes the draft
    with the settled energy once the month is over. None when that month is already invoiced
    beyond a draft or no contract supplied in it."""
    period = left_on.replace(day=1)
    first, last, _ = month_days(period)
    contracts = [c for c in contracts_active(first=first, last=last) if c.member_id == member.pk]
    existing = period_invoice(member=member, period=period)
    if not contracts or (existing is not None and existing.status != Invoice.Status.DRAFT):
        return None
    lines = invoice_lines_compute(member=member, period=period, contracts=contracts, statement=None)
    invoice = existing or Invoice.objects.create(
        member=member,
        period=period,
        kind=Invoice.Kind.INVOICE,
        currency=settings.BILLING_CURRENCY,
        payment_method=contracts[0].payment_method,
        reason="Final invoice (member left)",
    )
    invoice_lines_write(invoice=invoice, lines=lines)
    audit_log_write(
        event=AuditEvent.MEMBER_FINAL_INVOICE_DRAFTED,
        actor=actor,
        target=invoice,
        details={"member": member.membership_number, "period": f"{period:%Y-%m}"},
    )
    return invoice


@transaction.atomic
def member_leave(
    *,
    member: Member,
    reason: str,
    actor: Actor,
    left_on: date | None = None,
    now: datetime | None = None,
) -> dict[str, object]:
    """A member leaves on `left_on` (default today): status left with the reason, every supply
    contract ends that day, the final invoice of the month is drafted (the month's billing run
    completes it), and the share capital is refunded per MEMBERSHIP_SHARE_REFUND ("credit_note":
    a credit note of each issued share capital invoice, paid out by the next SEPA payout file;
    "hold": left to staff). The member keeps their login: they can still read and download their
    documents, but only active members trade."""
    now = now or timezone.now()
    left_on = left_on or timezone.localdate(now)
    member = member_status_change(
        member=member,
        status=Member.Status.LEFT,
        reason=reason,
        actor=actor,
        left_on=left_on,
        now=now,
    )
    ended = []
    for contract in member_open_contracts_lock(member=member, last_day=left_on):
        contract.end = max(left_on, contract.start)
        contract.save(update_fields=["end"])
        ended.append(contract.reference)
    final = _final_invoice(member=member, left_on=left_on, actor=actor)
    refunds = []
    if settings.MEMBERSHIP_SHARE_REFUND == "credit_note":
        share_invoices = Invoice.objects.filter(
            member=member, kind=Invoice.Kind.SHARE_CAPITAL, status=Invoice.Status.ISSUED
        ).exclude(corrections__kind=Invoice.Kind.CREDIT_NOTE)
        for invoice in share_invoices.order_by("id"):
            credit = invoice_credit(
                invoice=invoice, actor=actor, reason="Share capital refunded: member left", now=now
            )
            refunds.append(credit.number)
            audit_log_write(
                event=AuditEvent.SHARE_CAPITAL_REFUNDED,
                actor=actor,
                target=member,
                details={"invoice": invoice.number, "credit_note": credit.number},
            )
    return {
        "member": member.membership_number,
        "contracts_ended": ended,
        "final_invoice": final.pk if final else None,
        "share_refunds": refunds,
    }
