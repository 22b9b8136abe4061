from django.http import HttpRequest

from apps.accounts.policy import Capability, request_allows, user_in_auditor_group
from apps.notifications.selectors import member_unread_count
from apps.portal.navigation import auditor_nav, member_nav, staff_nav
from apps.portal.selectors import demo_preparing


def portal(request: HttpRequest) -> dict:
    """Navigation and role flags for templates/portal/base.html."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"demo_preparing": demo_preparing()}
    is_auditor = user_in_auditor_group(user)
    is_staff = bool(user.is_staff)
    nav = member_nav()
    # The active section is the longest nav URL that prefixes the path (/market/statements/
    # is Statements, not Trading at /market/).
    matches = [
        str(item["url"])
        for item in nav
        if request.path == item["url"]
        or (item["url"] != "/" and request.path.startswith(str(item["url"])))
    ]
    active = max(matches, key=len) if matches else None
    for item in nav:
        item["active"] = item["url"] == active
    member = getattr(user, "member", None) if hasattr(user, "member") else None
    return {
        "portal_member": member,
        "portal_unread": member_unread_count(member=member) if member is not None else 0,
        "portal_is_auditor": is_auditor,
        "portal_is_staff": is_staff,
        # Staff pages show their buttons and forms only to roles that may write (not auditors).
        "portal_can_write": request_allows(request, Capability.STAFF_WRITE),
        "portal_nav": nav,
        "portal_staff_nav": staff_nav() if is_staff else [],
        "portal_auditor_nav": auditor_nav() if is_auditor else [],
        "demo_preparing": demo_preparing(),
    }
