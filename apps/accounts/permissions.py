"""Who may do what in the role-guarded pages (compliance reports, the certificate registry).

- Auditors (group `auditor`) are read-only everywhere: any non-GET request from an auditor is
  refused with 403, whatever else the user is (auditor accounts may be marked staff to read the
  admin).
- Reports: cooperative staff and auditors; members get 403.
- Staff operations (cancel a certificate, handle an erasure): staff that are not auditors.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_auditor(user: Any) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    cached = getattr(user, "_es_is_auditor", None)
    if cached is None:
        cached = user.groups.filter(name="auditor").exists()
        user._es_is_auditor = cached
    return cached


def is_operator(user: Any) -> bool:
    """Cooperative staff who may change things (never an auditor)."""
    if not getattr(user, "is_authenticated", False) or is_auditor(user):
        return False
    return bool(user.is_superuser or user.is_staff or user.groups.filter(name="staff").exists())


def can_read_reports(user: Any) -> bool:
    return is_auditor(user) or is_operator(user)


def _guard(test: Callable[[Any], bool] | None) -> Callable:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if request.method not in SAFE_METHODS and is_auditor(request.user):
                raise PermissionDenied("Auditors have read-only access.")
            if test is not None and not test(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


#: Any logged-in user; auditors may only read.
portal_view = _guard(None)
#: Staff and auditors (reports, registry); members get 403.
reports_view = _guard(can_read_reports)
#: Staff operations; auditors and members get 403.
operator_view = _guard(is_operator)
