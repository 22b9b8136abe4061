"""The reset after each transactional test (tests/fixtures/database.py) leaves what Django's
`manage.py flush` leaves: every table empty but those post_migrate fills, and those with the
same rows (content types, permissions, role groups and their permissions)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection

from apps.accounts.models import Role
from apps.accounts.tests.factories import MemberFactory, StaffUserFactory
from apps.governance.models import ProposalType
from tests.fixtures import database

pytestmark = pytest.mark.django_db(transaction=True)


def _state() -> dict:
    """What a test would notice: row counts of every model table and the natural keys of what
    post_migrate writes (their ids differ from one post_migrate to the next)."""
    qn = connection.ops.quote_name
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    with connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {qn(table)}")  # noqa: S608
            counts[table] = cursor.fetchone()[0]
    return {
        "counts": counts,
        "content types": set(ContentType.objects.values_list("app_label", "model")),
        "permissions": set(Permission.objects.values_list("content_type__app_label", "codename")),
        "groups": {
            group.name: set(group.permissions.values_list("content_type__app_label", "codename"))
            for group in Group.objects.all()
        },
    }


def _flush() -> dict:
    call_command("flush", verbosity=0, interactive=False, reset_sequences=False)
    return _state()


def _fill() -> None:
    """Rows in several apps' tables, a data-migration row (the statutes' proposal types of
    governance 0002) and an extra group."""
    MemberFactory.create_batch(3)
    StaffUserFactory()
    ProposalType.objects.get_or_create(code="ordinary", defaults={"name": "Ordinary resolution"})
    Group.objects.create(name="temporary")


def test_reset_leaves_the_state_of_djangos_flush():
    flushed = _flush()
    assert sum(flushed["counts"].values()) > 0  # post_migrate's rows
    assert flushed["groups"].keys() == {role.value for role in Role}

    _fill()
    assert _state() != flushed
    database.database_reset("default", inhibit_post_migrate=False)
    assert _state() == flushed

    # Nothing changed post_migrate's tables: they stay, everything else is emptied.
    _fill()
    Group.objects.get(name="temporary").delete()
    database.database_reset("default", inhibit_post_migrate=False)
    assert _state() == flushed


def test_reset_restores_what_a_test_changed_in_post_migrates_tables():
    flushed = _flush()
    database.database_reset("default", inhibit_post_migrate=False)  # takes the snapshot
    staff = Group.objects.get(name=Role.STAFF.value)
    removed = staff.permissions.first()
    staff.permissions.remove(removed)
    Permission.objects.filter(codename="view_proposaltype").delete()
    ContentType.objects.filter(app_label="governance", model="assembly").delete()
    assert _state() != flushed

    database.database_reset("default", inhibit_post_migrate=False)

    assert _state() == flushed


def test_reset_truncates_big_tables_and_deletes_small_ones(monkeypatch):
    """A table with many rows is truncated when no foreign key points at it, else deleted: with
    the threshold at 2 rows, the referenced member and user tables and the unreferenced proposal
    types table are emptied alike."""
    flushed = _flush()
    monkeypatch.setattr(database, "TRUNCATE_FROM_ROWS", 2)
    _fill()
    ProposalType.objects.create(code="other", name="Other resolution")
    database.database_reset("default", inhibit_post_migrate=False)
    assert _state() == flushed


def test_inhibited_post_migrate_leaves_every_table_empty():
    _flush()
    _fill()
    database.database_reset("default", inhibit_post_migrate=True)
    assert not any(_state()["counts"].values())


def test_the_schema_allows_deleting_tables_in_any_order():
    """The reset deletes rows table by table in no particular order: that holds while every
    foreign key is checked at commit and no trigger or rule acts on a DELETE."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint"
            " WHERE contype = 'f' AND NOT (condeferrable AND condeferred)"
        )
        assert cursor.fetchall() == []
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal"
        )
        assert cursor.fetchall() == []
        cursor.execute("SELECT tablename, rulename FROM pg_rules WHERE schemaname = 'public'")
        assert cursor.fetchall() == []
