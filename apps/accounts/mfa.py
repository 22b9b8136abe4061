"""Staff must use TOTP: helpers shared by the middleware, the MFA adapter and tests.

A staff session satisfies MFA only when (1) the user has a TOTP authenticator and (2) this very
session recorded an "mfa" authentication step — allauth records it when the TOTP stage of login
is passed, on re-authentication with a code, and (see `record_activation`) when the user proves a
code while activating the authenticator. Having TOTP set up is not enough: a session opened before
TOTP existed, or by any path that skipped the stage, must prove a code first.

Setting TOTP up is never trust-on-first-use: a staff or auditor account without an authenticator
may open the activation page only in a session that redeemed a superuser's enrollment link
(`apps.accounts.services.mfa_enrollment_redeem`; the session then holds the grant below).
"""

from __future__ import annotations

import enum
from typing import Any

from allauth.account.authentication import get_authentication_records
from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import MFAEnrollment

ENROLLMENT_SESSION_KEY = "accounts.mfa_enrollment"


class StaffMFAState(enum.Enum):
    NOT_REQUIRED = "not_required"
    MISSING = "missing"  # no TOTP authenticator: must set one up
    NOT_PASSED = "not_passed"  # has TOTP, but this session did not pass it
    SATISFIED = "satisfied"


def mfa_required_for(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_staff)


def user_has_totp(user: Any) -> bool:
    return Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists()


class _SessionOnly:
    """What allauth's record reader needs of a request: its session (HTTP or WebSocket)."""

    def __init__(self, session: Any) -> None:
        self.session = session if session is not None else {}


def _records_passed_mfa(records: list[dict]) -> bool:
    return any(record.get("method") == "mfa" for record in records)


def mfa_state_for(user: Any, session: Any) -> StaffMFAState:
    """The MFA state of `user` in `session` (a request's or a WebSocket scope's session)."""
    if not mfa_required_for(user):
        return StaffMFAState.NOT_REQUIRED
    if not user_has_totp(user):
        return StaffMFAState.MISSING
    records = get_authentication_records(_SessionOnly(session), user)  # type: ignore[arg-type]
    if not _records_passed_mfa(records):
        return StaffMFAState.NOT_PASSED
    return StaffMFAState.SATISFIED


def staff_mfa_state(request: HttpRequest) -> StaffMFAState:
    return mfa_state_for(request.user, request.session)


def enrollment_grant(request: HttpRequest) -> int | None:
    """The id of the redeemed, unfinished, unexpired enrollment this session holds for its user."""
    enrollment_id = request.session.get(ENROLLMENT_SESSION_KEY)
    if not enrollment_id or not getattr(request.user, "is_authenticated", False):
        return None
    valid = MFAEnrollment.objects.filter(
        pk=enrollment_id,
        user_id=request.user.pk,
        redeemed_at__isnull=False,
        completed_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).exists()
    return int(enrollment_id) if valid else None


def may_activate_totp(request: HttpRequest) -> bool:
    """Staff without an authenticator may set one up only within a redeemed enrollment."""
    user = request.user
    if not mfa_required_for(user) or user_has_totp(user):
        return True
    return enrollment_grant(request) is not None


def record_activation(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Receiver of allauth's `authenticator_added`: activating TOTP requires a valid code, so the
    session has proven possession of the authenticator."""
    authenticator = kwargs.get("authenticator")
    if request is None or authenticator is None:
        return
    if authenticator.type != Authenticator.Type.TOTP:
        return
    record_authentication(request, user, "mfa", id=authenticator.pk, type=authenticator.type)
    enrollment_id = request.session.pop(ENROLLMENT_SESSION_KEY, None)
    if enrollment_id:
        from apps.accounts.services import mfa_enrollment_complete

        mfa_enrollment_complete(enrollment_id=int(enrollment_id), user=user)


class MFAAdapter(DefaultMFAAdapter):
    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        """Staff cannot remove their TOTP authenticator (MFA is mandatory for them)."""
        if authenticator.type == Authenticator.Type.TOTP and authenticator.user.is_staff:
            return False
        return super().can_delete_authenticator(authenticator)
