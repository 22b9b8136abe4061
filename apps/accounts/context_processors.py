from django.http import HttpRequest


def portal(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "portal_member": getattr(user, "member", None) if hasattr(user, "member") else None,
        "portal_is_auditor": user.groups.filter(name="auditor").exists(),
    }
