"""Roles are Django groups with a computed set of permissions (pure policy, no database)."""

from __future__ import annotations

from apps.accounts.models import Role

# Apps whose models cooperative staff operate day to day (add/change/view; never delete:
# history-bearing rows are corrected by new rows, not removed).
OPERATIONAL_APP_LABELS = frozenset(
    {
        "accounts",
        "audit",
        "core",
        "grid",
        "meters",
        "chain",
        "market",
        "incentives",
        "compliance",
        "notifications",
        "governance",
        "billing",
    }
)
# Models nobody edits through the admin, staff included (append-only or security records).
READ_ONLY_MODELS = frozenset({"audit.auditlog", "accounts.walletnonce"})
STAFF_ACTIONS = ("add", "change", "view")
# Auditors see every record, but not authentication secrets (TOTP seeds, session data).
AUDITOR_HIDDEN_APP_LABELS = frozenset({"mfa", "sessions"})


def permissions_for_role(role: str, available: set[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """Permissions of a role, chosen from `available` = {(app_label, model, codename)}.

    Returns {(app_label, codename)}. staff: add/change/view on operational models (view only on
    read-only ones); auditor: view on everything; member: nothing in the admin.
    """
    granted: set[tuple[str, str]] = set()
    for app_label, model, codename in available:
        action = codename.split("_", 1)[0]
        if role == Role.AUDITOR:
            if action == "view" and app_label not in AUDITOR_HIDDEN_APP_LABELS:
                granted.add((app_label, codename))
        elif role == Role.STAFF:
            if app_label not in OPERATIONAL_APP_LABELS:
                continue
            if f"{app_label}.{model}" in READ_ONLY_MODELS:
                if action == "view":
                    granted.add((app_label, codename))
            elif action in STAFF_ACTIONS:
                granted.add((app_label, codename))
    return granted
