"""Writes for accounts: roles, wallet linking (Sign-In with Ethereum), staff MFA enrollment."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone
from eth_utils import is_hex_address, to_checksum_address

from apps.accounts.lock_objects import (
    member_lock,
    mfa_enrollment_lock_by_nonce,
    mfa_enrollment_lock_open,
    wallet_nonce_lock,
)
from apps.accounts.models import Member, MFAEnrollment, Role, User, WalletNonce
from apps.accounts.roles import permissions_for_role
from apps.accounts.selectors import actor_user
from apps.accounts.siwe import SiweError, SiweMessage, generate_nonce
from apps.accounts.siwe import verify as siwe_verify
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor


def roles_sync(*, using: str = "default", create_missing: bool = True) -> dict[str, int]:
    """Create the groups staff/member/auditor and set their permissions to exactly the policy in
    apps.accounts.roles. Idempotent; runs from the data migration and after every `migrate`
    (post_migrate), so apps migrated later get their permissions too. Returns counts per group."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    if create_missing:  # in the data migration, permissions of later apps do not exist yet
        for app_config in global_apps.get_app_configs():
            create_permissions(app_config, verbosity=0, using=using)
    rows = Permission.objects.using(using).values_list(
        "pk", "content_type__app_label", "content_type__model", "codename"
    )
    by_key = {(app_label, codename): pk for pk, app_label, _model, codename in rows}
    available = {(app_label, model, codename) for _pk, app_label, model, codename in rows}
    counts = {}
    with transaction.atomic(using=using):
        for role in Role:
            group, _ = Group.objects.using(using).get_or_create(name=role.value)
            wanted = {by_key[key] for key in permissions_for_role(role.value, available)}
            current = set(group.permissions.values_list("pk", flat=True))
            if wanted != current:
                group.permissions.set(wanted)
            counts[role.value] = len(wanted)
    return counts


@transaction.atomic
def user_role_grant(*, user: User, role: str, actor: Actor = None) -> User:
    """Put a user in a role's group. Staff also get `is_staff` (admin access, TOTP required);
    auditors get `is_staff` for the read-only admin too (their group grants only view)."""
    from django.contrib.auth.models import Group

    role = Role(role)
    group, _ = Group.objects.get_or_create(name=role.value)
    if user.groups.filter(pk=group.pk).exists() and (role == Role.MEMBER or user.is_staff):
        return user
    user.groups.add(group)
    if role in (Role.STAFF, Role.AUDITOR) and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    audit_log_write(
        event=AuditEvent.USER_ROLE_GRANTED, actor=actor, target=user, details={"role": role.value}
    )
    return user


# --- Wallet linking: Sign-In with Ethereum (EIP-4361) ------------------------------------------


def _siwe_statement(member: Member) -> str:
    return f"Link this wallet to EnergySphere membership {member.membership_number}."


def wallet_challenge_issue(
    *, user: User, address: str, domain: str, uri: str, now: datetime | None = None
) -> SiweMessage:
    """Issue a single-use, expiring nonce and the EIP-4361 message the wallet must sign."""
    from apps.accounts.selectors import member_for_user

    member = member_for_user(user)
    now = now or timezone.now()
    address = address.strip()
    if not is_hex_address(address):
        raise ApplicationError(
            "Enter an Ethereum address (0x followed by 40 hex digits).", {"address": "invalid"}
        )
    ttl = timedelta(seconds=settings.SIWE_NONCE_TTL_SECONDS)
    nonce = WalletNonce.objects.create(
        user=user, nonce=generate_nonce(), issued_at=now, expires_at=now + ttl
    )
    return SiweMessage(
        domain=domain,
        address=to_checksum_address(address),
        statement=_siwe_statement(member),
        uri=uri,
        chain_id=settings.BLOCKCHAIN_CHAIN_ID,
        nonce=nonce.nonce,
        issued_at=now.replace(microsecond=0),
        expiration_time=nonce.expires_at.replace(microsecond=0),
    )


def wallet_link(
    *, user: User, message: str, signature: str, domain: str, now: datetime | None = None
) -> Member:
    """Verify a signed EIP-4361 message and store the checksummed address on the member.

    The nonce must have been issued to this user, be unused and unexpired; it is consumed by the
    first attempt, successful or not (single use). The domain must be this site's host and the
    chain id the cooperative's chain."""
    from apps.accounts.selectors import member_for_user

    member = member_for_user(user)
    now = now or timezone.now()
    try:
        parsed = SiweMessage.parse(message)
    except SiweError as exc:
        raise ApplicationError(
            f"Not a Sign-In with Ethereum message: {exc}", {"message": "malformed"}
        ) from exc
    with transaction.atomic():
        nonce = wallet_nonce_lock(user=user, nonce=parsed.nonce)
        if nonce is None:
            raise ApplicationError("This message was not issued to you.", {"nonce": "unknown"})
        if nonce.used_at is not None:
            raise ApplicationError(
                "This message was already used; request a new one.", {"nonce": "used"}
            )
        nonce.used_at = now
        nonce.save(update_fields=["used_at"])
        error: str | None = None
        address = ""
        if now >= nonce.expires_at:
            error = "The message has expired; request a new one."
        else:
            try:
                address = siwe_verify(
                    parsed,
                    signature.strip(),
                    domain=domain,
                    nonce=nonce.nonce,
                    now=now,
                    chain_id=settings.BLOCKCHAIN_CHAIN_ID,
                )
            except SiweError as exc:
                error = f"Verification failed: {exc}"
        if error is None:
            taken = (
                Member.objects.filter(wallet_address__iexact=address).exclude(pk=member.pk).exists()
            )
            if taken:
                error = "This wallet is already linked to another membership."
        if error is not None:
            audit_log_write(
                event=AuditEvent.WALLET_LINK_FAILED,
                actor=user,
                target=member,
                details={"reason": error, "address": parsed.address},
            )
    # The consumed nonce and the failure record are committed; now refuse.
    if error is not None:
        raise ApplicationError(error, {"signature": "rejected"})
    return _wallet_store(member=member, address=address, actor=user, now=now, nonce=parsed.nonce)


@transaction.atomic
def _wallet_store(
    *, member: Member, address: str, actor: Actor, now: datetime, nonce: str
) -> Member:
    member = member_lock(member.pk)
    previous = member.wallet_address
    member.wallet_address = address
    member.wallet_linked_at = now
    member.save(update_fields=["wallet_address", "wallet_linked_at"])
    audit_log_write(
        event=AuditEvent.WALLET_LINKED,
        actor=actor,
        target=member,
        details={"address": address, "previous": previous, "nonce": nonce, "method": "EIP-4361"},
    )
    return member


# --- staff MFA enrollment (no trust on first use) ---------------------------------------------

ENROLLMENT_SALT = "energysphere.accounts.mfa-enrollment"


class EnrollmentRefused(ApplicationError):
    """An enrollment link that cannot be used; `extra["reason"]` says why."""


def _enrollment_ttl() -> timedelta:
    return timedelta(hours=settings.MFA_ENROLLMENT_TTL_HOURS)


def _require_superuser(actor: Actor) -> None:
    """Only a superuser (or an operator at the server's console, a plain label) enrolls staff."""
    user = actor_user(actor)
    if user is not None and not user.is_superuser:
        raise ApplicationError("Only a superuser can issue enrollment links or reset MFA.")


@transaction.atomic
def mfa_enrollment_issue(*, user: User, actor: Actor) -> str:
    """Issue a signed, expiring, single-use enrollment link token for a staff/auditor account."""
    _require_superuser(actor)
    if not user.is_staff:
        raise ApplicationError("Only staff and auditor accounts are enrolled by invitation.")
    now = timezone.now()
    nonce = secrets.token_hex(16)
    MFAEnrollment.objects.create(
        user=user,
        nonce=nonce,
        issued_by=actor_user(actor),
        issued_by_label=str(actor) if actor else "system",
        created_at=now,
        expires_at=now + _enrollment_ttl(),
    )
    audit_log_write(
        event=AuditEvent.MFA_ENROLLMENT_ISSUED,
        actor=actor,
        target=user,
        details={"expires_at": (now + _enrollment_ttl()).isoformat()},
    )
    return signing.dumps({"u": user.pk, "n": nonce}, salt=ENROLLMENT_SALT)


@transaction.atomic
def mfa_enrollment_redeem(*, token: str, user: User) -> MFAEnrollment:
    """Spend an enrollment link for the logged-in `user`. Refused (nothing written) when the
    link is forged, expired, already used, issued for someone else, or the user is enrolled."""
    try:
        data = signing.loads(token, salt=ENROLLMENT_SALT, max_age=_enrollment_ttl())
    except signing.SignatureExpired as exc:
        raise EnrollmentRefused(
            "This enrollment link has expired. Ask a superuser for a new one.",
            {"reason": "expired"},
        ) from exc
    except signing.BadSignature as exc:
        raise EnrollmentRefused(
            "This enrollment link is not valid.", {"reason": "invalid"}
        ) from exc
    enrollment = mfa_enrollment_lock_by_nonce(str(data.get("n", "")))
    if enrollment is None:
        raise EnrollmentRefused("This enrollment link is not valid.", {"reason": "invalid"})
    if enrollment.user_id != user.pk or data.get("u") != user.pk:
        raise EnrollmentRefused(
            "This enrollment link was issued for another account. Log in as that account.",
            {"reason": "wrong_user"},
        )
    if enrollment.redeemed_at is not None:
        raise EnrollmentRefused(
            "This enrollment link has already been used. Ask a superuser for a new one.",
            {"reason": "used"},
        )
    now = timezone.now()
    if enrollment.expires_at <= now:
        raise EnrollmentRefused(
            "This enrollment link has expired. Ask a superuser for a new one.",
            {"reason": "expired"},
        )
    if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        raise EnrollmentRefused(
            "This account already has an authenticator.", {"reason": "enrolled"}
        )
    enrollment.redeemed_at = now
    enrollment.save(update_fields=["redeemed_at"])
    audit_log_write(event=AuditEvent.MFA_ENROLLMENT_REDEEMED, actor=user, target=user)
    return enrollment


@transaction.atomic
def mfa_enrollment_complete(*, enrollment_id: int, user: User) -> None:
    """The authenticator was activated within a redeemed enrollment: record it (once)."""
    enrollment = mfa_enrollment_lock_open(enrollment_id=enrollment_id, user=user)
    if enrollment is None:
        return
    enrollment.completed_at = timezone.now()
    enrollment.save(update_fields=["completed_at"])
    audit_log_write(event=AuditEvent.MFA_ENROLLMENT_COMPLETED, actor=user, target=user)


@transaction.atomic
def mfa_reset(*, user: User, actor: Actor) -> str:
    """A superuser removes every authenticator of a staff/auditor account (lost phone) and issues
    a new enrollment link; audit-logged. Returns the link's token."""
    _require_superuser(actor)
    removed = list(
        Authenticator.objects.filter(user=user).values_list("type", flat=True).order_by("type")
    )
    Authenticator.objects.filter(user=user).delete()
    audit_log_write(
        event=AuditEvent.MFA_RESET, actor=actor, target=user, details={"removed": removed}
    )
    return mfa_enrollment_issue(user=user, actor=actor)


@transaction.atomic
def member_chain_salt_ensure(*, member_id: int) -> str:
    """The member's secret salt for on-chain identifiers, created on first use (random 32
    bytes). Erasure destroys it, so a chain record can no longer be linked to the member."""
    member = member_lock(member_id)
    if not member.chain_salt:
        member.chain_salt = secrets.token_hex(32)
        member.save(update_fields=["chain_salt"])
    return member.chain_salt


@transaction.atomic
def user_identity_erase(*, user: User, email_pseudonym: str) -> dict[str, int]:
    """Erase what identity records hold about a user besides the User row itself: allauth's
    e-mail addresses, every MFA authenticator (TOTP seed, recovery codes), login-throttling
    records naming the e-mail, MFA enrollment links. Returns counts per record kind."""
    from allauth.account.models import EmailAddress
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    email = user.email.lower()
    counts = {
        "email_addresses": EmailAddress.objects.filter(user=user).delete()[0],
        "authenticators": Authenticator.objects.filter(user=user).delete()[0],
        "enrollments": MFAEnrollment.objects.filter(user=user).delete()[0],
    }
    throttling = 0
    for model in (AccessAttempt, AccessLog, AccessFailureLog):
        throttling += model.objects.filter(username__iexact=email).delete()[0]
    counts["login_records"] = throttling
    return counts


# --- Membership: applicants and the status pipeline --------------------------------------------

#: The audit event of each status a member moves to (the reason goes into the details).
MEMBER_STATUS_EVENTS = {
    Member.Status.ACTIVE: AuditEvent.MEMBER_ACTIVATED,
    Member.Status.SUSPENDED: AuditEvent.MEMBER_SUSPENDED,
    Member.Status.LEFT: AuditEvent.MEMBER_LEFT,
}


@transaction.atomic
def member_applicant_create(
    *,
    email: str,
    legal_name: str,
    street: str,
    postal_code: str,
    city: str,
    country: str,
    membership_number: str,
    kind: str = Member.Kind.CONSUMER,
    actor: Actor = None,
) -> Member:
    """A person who applied to join: a login without a usable password (nobody can sign in
    until staff approve and the invitation sets a password) and a Member in status applicant.
    The caller checks the e-mail is free (a taken one is answered like a fresh one)."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ApplicationError("This e-mail address is already registered.", {"email": email})
    user = User.objects.create_user(email=email, password=None)
    member = Member.objects.create(
        user=user,
        membership_number=membership_number,
        legal_name=legal_name,
        kind=kind,
        status=Member.Status.APPLICANT,
        street=street,
        postal_code=postal_code,
        city=city,
        country=country,
        status_changed_at=timezone.now(),
    )
    audit_log_write(
        event=AuditEvent.MEMBER_APPLIED,
        actor=actor,
        target=member,
        details={"membership_number": membership_number},
    )
    return member


@transaction.atomic
def member_status_change(
    *,
    member: Member,
    status: str,
    reason: str,
    actor: Actor,
    left_on: date | None = None,
    now: datetime | None = None,
) -> Member:
    """Move a member along applicant → active → suspended → active / left, with a reason.

    The transition table is `Member.TRANSITIONS` (an illegal move raises InvalidTransition and
    writes nothing); the status change and its reason are audit-logged. Leaving also has its
    economic side (final invoice, share capital refund): call
    `apps.billing.services.member_leave`, which calls this."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("A status change needs a reason.", {"reason": ["Required."]})
    locked = member_lock(member.pk)
    event = MEMBER_STATUS_EVENTS[Member.Status(status)]
    if status == Member.Status.ACTIVE and locked.status == Member.Status.SUSPENDED:
        event = AuditEvent.MEMBER_REACTIVATED
    locked.status_reason = reason[:200]
    locked.status_changed_at = now
    fields = ["status_reason", "status_changed_at"]
    if status == Member.Status.LEFT:
        locked.left_on = left_on or timezone.localdate(now)
        fields.append("left_on")
    if status == Member.Status.ACTIVE and locked.status == Member.Status.APPLICANT:
        locked.joined = timezone.localdate(now)
        fields.append("joined")
    locked.transition_to(
        status,
        actor=actor,
        event=event,
        details={"reason": reason[:200], **({"left_on": str(locked.left_on)} if left_on else {})},
        update_fields=fields,
    )
    if status == Member.Status.ACTIVE:
        user_role_grant(user=locked.user, role=Role.MEMBER, actor=actor)
    return locked


def member_invitation_url(*, user: User) -> str:
    """The path of a one-time password-set link for `user` (allauth's password reset key: it
    expires after PASSWORD_RESET_TIMEOUT and stops working once the password is set)."""
    from allauth.account.forms import default_token_generator
    from allauth.account.utils import user_pk_to_url_str
    from django.urls import reverse

    return reverse(
        "account_reset_password_from_key",
        kwargs={
            "uidb36": user_pk_to_url_str(user),
            "key": default_token_generator.make_token(user),
        },
    )


def member_invitation_send(*, member: Member, base_url: str, actor: Actor = None) -> None:
    """E-mail the admitted member the link to set their password (after the commit)."""
    from django.core.mail import send_mail

    user = member.user
    link = base_url.rstrip("/") + member_invitation_url(user=user)
    audit_log_write(
        event=AuditEvent.MEMBER_INVITATION_SENT,
        actor=actor,
        target=member,
        details={"membership_number": member.membership_number},
    )

    def send() -> None:
        send_mail(
            subject="Welcome to the cooperative: set your password",
            message=(
                f"Dear {member.legal_name},\n\nyour membership {member.membership_number} has "
                f"been approved. Set your password here to sign in to the member portal:\n\n"
                f"{link}\n\nThe link works once and expires in "
                f"{settings.PASSWORD_RESET_TIMEOUT // 86400} days.\n"
            ),
            from_email=None,
            recipient_list=[user.email],
        )

    transaction.on_commit(send)
