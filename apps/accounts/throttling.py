"""Login throttling (django-axes): who a failed login attempt counts against.

Every login goes through Django's ``authenticate`` with the request — the portal's allauth form
(credentials ``email``) and the admin's login form (``username``) — so django-axes sees both.
An attempt counts against the pair (client IP, e-mail): a guesser is locked out after
``AXES_FAILURE_LIMIT`` failures for ``AXES_COOLOFF_TIME``, while the account's owner can still
log in from elsewhere (locking on the e-mail alone would let anyone lock any member out).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def login_username(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str:
    """The e-mail address a login attempt names, lower-cased ("" when it names none)."""
    for source in (credentials or {}, getattr(request, "POST", {}) or {}):
        for key in ("email", "username", "login"):
            value = source.get(key)
            if value:
                return str(value).strip().lower()
    return ""


def client_address(request: HttpRequest) -> str:
    """The client's address as the server sees it (behind a proxy, the ASGI server has already
    taken it from X-Forwarded-For of the trusted proxies only)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def anonymous_form_throttled(
    request: HttpRequest, *, scope: str, limit: int, window_seconds: int
) -> bool:
    """Count one submission of an anonymous form from this address and say whether it is over
    `limit` within `window_seconds` (a fixed window in the shared cache). The caller answers
    429 and stores nothing when it is."""
    from django.core.cache import cache

    key = f"throttle:{scope}:{client_address(request)}"
    if cache.add(key, 1, timeout=window_seconds):
        return False
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_seconds)
        return False
    return count > limit
