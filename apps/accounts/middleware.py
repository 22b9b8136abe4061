"""Staff must have TOTP set up and have passed it in this session (apps.accounts.mfa).

Scope (settings.STAFF_MFA_SCOPE):
- "all" (default): every page of a staff session except the login/MFA pages themselves
  (/accounts/), static files and health checks — a staff user without TOTP can do nothing before
  setting it up;
- "admin": only the admin and the prefixes in settings.STAFF_MFA_PATH_PREFIXES (used by the test
  settings, where other apps' tests log staff in with `force_login`).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from apps.accounts.mfa import StaffMFAState, may_activate_totp, staff_mfa_state

# Never guarded: where staff log in and set up / pass TOTP, and what must work without a session.
EXEMPT_PREFIXES = ("/accounts/", "/static/", "/media/", "/healthz", "/api/schema/", "/favicon")


def _guarded(path: str) -> bool:
    admin = reverse("admin:index")
    if path.startswith(admin):
        return True
    if getattr(settings, "STAFF_MFA_SCOPE", "all") == "all":
        return not path.startswith(EXEMPT_PREFIXES)
    extra = getattr(settings, "STAFF_MFA_PATH_PREFIXES", None) or []
    return bool(extra) and path.startswith(tuple(extra))


class StaffMFARequiredMiddleware:
    """Staff without TOTP are sent to set it up (within a redeemed enrollment link, else to the
    page that explains how to get one); staff with TOTP whose session did not pass it (e.g.
    logged in before activating it) are sent to prove a code. API calls get 403 JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # No trust on first use: the activation page (under the exempt /accounts/) needs a
        # redeemed enrollment link for staff without an authenticator.
        if request.path == reverse("mfa_activate_totp") and not may_activate_totp(request):
            return HttpResponseRedirect(reverse("mfa_enrollment_required"))
        if _guarded(request.path):
            state = staff_mfa_state(request)
            if state in (StaffMFAState.MISSING, StaffMFAState.NOT_PASSED):
                if request.path.startswith("/api/"):
                    return JsonResponse(
                        {"detail": "Staff must pass two-factor authentication first."},
                        status=403,
                    )
                if state is StaffMFAState.MISSING:
                    target = (
                        "mfa_activate_totp"
                        if may_activate_totp(request)
                        else "mfa_enrollment_required"
                    )
                    return HttpResponseRedirect(reverse(target))
                query = urlencode({"next": request.get_full_path()})
                return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
        return self.get_response(request)


class PasswordHashingBusyMiddleware:
    """A login that found every password-hashing slot taken (apps.accounts.hashers) is answered
    503 with Retry-After and a page saying so, instead of an error page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.shortcuts import render

        from apps.accounts.hashers import PasswordHashingBusy

        if not isinstance(exception, PasswordHashingBusy):
            return None
        response = render(request, "account/login_busy.html",
                          {"retry_after": exception.retry_after}, status=503)  # fmt: skip
        response["Retry-After"] = str(exception.retry_after)
        return response
