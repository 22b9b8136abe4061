from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from apps.accounts.services import roles_sync, user_role_grant
from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog

pytestmark = pytest.mark.django_db


def _codenames(group_name: str) -> set[str]:
    group = Group.objects.get(name=group_name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}


def test_migrations_create_the_three_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {"staff", "member", "auditor"}


def test_staff_change_operational_models_but_never_edit_the_audit_log():
    perms = _codenames("staff")
    assert "accounts.change_member" in perms
    assert "audit.view_auditlog" in perms
    assert "audit.change_auditlog" not in perms
    assert "audit.delete_auditlog" not in perms
    assert not any(p.split(".")[1].startswith("delete_") for p in perms)
    assert not any(p.startswith("auth.") for p in perms)  # cannot edit groups/permissions


def test_auditor_gets_view_only_on_everything_except_secrets():
    perms = _codenames("auditor")
    assert perms, "auditor group has no permissions"
    assert all(p.split(".")[1].startswith("view_") for p in perms)
    assert "audit.view_auditlog" in perms
    assert "accounts.view_member" in perms
    assert not any(p.startswith("mfa.") for p in perms)
    # Every model of the project apps is visible to auditors.
    project_views = set(
        Permission.objects.filter(
            codename__startswith="view_",
            content_type__app_label__in=["accounts", "compliance", "grid", "meters"],
        ).values_list("content_type__app_label", "codename")
    )
    assert {f"{a}.{c}" for a, c in project_views} <= perms


def test_member_group_has_no_admin_permissions():
    assert _codenames("member") == set()


def test_roles_sync_is_idempotent_and_restores_tampered_groups():
    first = roles_sync()
    staff = Group.objects.get(name="staff")
    staff.permissions.add(Permission.objects.get(codename="delete_auditlog"))
    Group.objects.get(name="auditor").permissions.clear()
    second = roles_sync()
    assert first == second
    assert "audit.delete_auditlog" not in _codenames("staff")
    assert len(_codenames("auditor")) == first["auditor"]


def test_granting_staff_role_gives_admin_access_and_is_audited(user_factory):
    user = user_factory()
    user_role_grant(user=user, role="staff")
    user.refresh_from_db()
    assert user.is_staff
    assert user.has_perm("accounts.change_member")
    assert AuditLog.objects.filter(
        event=AuditEvent.USER_ROLE_GRANTED, target_id=str(user.pk)
    ).exists()


def test_auditor_cannot_change_anything(auditor_user):
    assert auditor_user.has_perm("accounts.view_member")
    assert not auditor_user.has_perm("accounts.change_member")
    assert not auditor_user.has_perm("audit.change_auditlog")
