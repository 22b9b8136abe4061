"""Staff must have TOTP set up and have passed it in this session before reaching the admin."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from apps.accounts.mfa import StaffMFAState, staff_mfa_state


def _protected_prefixes() -> tuple[str, ...]:
    configured = getattr(settings, "STAFF_MFA_PATH_PREFIXES", None) or []
    return (reverse("admin:index"), *configured)


class StaffMFARequiredMiddleware:
    """Staff without TOTP are sent to set it up; staff with TOTP whose session did not pass it
    (e.g. logged in before activating it) are sent to prove a code. Applies to the admin and any
    extra prefixes in settings.STAFF_MFA_PATH_PREFIXES."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(_protected_prefixes()):
            state = staff_mfa_state(request)
            if state is StaffMFAState.MISSING:
                return HttpResponseRedirect(reverse("mfa_activate_totp"))
            if state is StaffMFAState.NOT_PASSED:
                query = urlencode({"next": request.get_full_path()})
                return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
        return self.get_response(request)
