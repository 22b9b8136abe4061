from __future__ import annotations

import importlib
import re

import pytest

from apps.accounts.tests.factories import MemberFactory
from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError

# Past-tense verbs of the catalogue that do not end in "-ed".
IRREGULAR_VERBS = {"cast", "chosen", "left", "read", "reset", "sent", "set"}


def test_every_event_follows_the_grammar():
    for event in AuditEvent:
        assert re.fullmatch(r"[a-z][a-z_]*\.[a-z][a-z_]*", event.value), event.value
        verb = event.value.split(".", 1)[1]
        assert verb.endswith("ed") or verb in IRREGULAR_VERBS, event.value


def test_the_data_migration_renames_only_into_the_catalogue():
    migration = importlib.import_module("apps.audit.migrations.0003_event_catalogue_names")
    assert set(migration.RENAMES.values()) <= set(AuditEvent.values)
    assert not set(migration.RENAMES) & set(AuditEvent.values)
    assert len(set(migration.RENAMES.values())) == len(migration.RENAMES)  # reversible


@pytest.mark.django_db
def test_a_catalogue_event_is_written():
    member = MemberFactory()
    log = audit_log_write(event=AuditEvent.MEMBER_ERASED, actor="staff", target=member)
    assert (log.event, log.target_type, log.target_id) == (
        "member.erased",
        "accounts.member",
        str(member.pk),
    )
    assert log.actor_label == "staff"


@pytest.mark.django_db
@pytest.mark.parametrize("event", ["test.event", "market.run_settled", ""])
def test_an_event_outside_the_catalogue_is_refused(event):
    with pytest.raises(ApplicationError):
        audit_log_write(event=event, target_type="x", target_id=1)
    assert not AuditLog.objects.exists()
