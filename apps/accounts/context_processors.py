from django.http import HttpRequest

from apps.accounts.navigation import member_nav, staff_nav


def portal(request: HttpRequest) -> dict:
    """Navigation and role flags for templates/portal/base.html."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    group_names = {group.name for group in user.groups.all()}
    is_auditor = "auditor" in group_names
    is_staff = bool(user.is_staff)
    nav = member_nav()
    for item in nav:
        url = str(item["url"])
        item["active"] = request.path == url or (url != "/" and request.path.startswith(url))
    return {
        "portal_member": getattr(user, "member", None) if hasattr(user, "member") else None,
        "portal_is_auditor": is_auditor,
        "portal_is_staff": is_staff,
        "portal_nav": nav,
        "portal_staff_nav": staff_nav() if is_staff else [],
    }
