"""Staff MFA enrollment pages (under /accounts/, where a session without MFA may go)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from apps.accounts.mfa import ENROLLMENT_SESSION_KEY, user_has_totp
from apps.accounts.policy import public_view
from apps.accounts.services import EnrollmentRefused, mfa_enrollment_redeem

# What each refusal answers: a link that is wrong for this account is forbidden, a spent or
# expired one is gone, a malformed one is a bad request.
_REFUSAL_STATUS = {"wrong_user": 403, "used": 410, "expired": 410, "enrolled": 409, "invalid": 400}


@public_view  # the view itself requires the account the link names
def mfa_enroll(request: HttpRequest, token: str) -> HttpResponse:
    """Redeem an enrollment link: the logged-in account it was issued for may now set up TOTP."""
    if not request.user.is_authenticated:
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{reverse('account_login')}?{query}")
    try:
        enrollment = mfa_enrollment_redeem(token=token, user=request.user)
    except EnrollmentRefused as exc:
        reason = exc.extra.get("reason", "invalid")
        return render(
            request,
            "account/mfa_enrollment_refused.html",
            {"message": exc.message, "reason": reason},
            status=_REFUSAL_STATUS.get(reason, 400),
        )
    request.session[ENROLLMENT_SESSION_KEY] = enrollment.pk
    return HttpResponseRedirect(reverse("mfa_activate_totp"))


@public_view
def mfa_enrollment_required(request: HttpRequest) -> HttpResponse:
    """Where staff without an authenticator land: how to get an enrollment link."""
    enrolled = request.user.is_authenticated and user_has_totp(request.user)
    return render(request, "account/mfa_enrollment_required.html", {"enrolled": enrolled})
