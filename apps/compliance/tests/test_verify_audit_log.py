"""`manage.py verify_audit_log`: an untouched log passes (its head anchored on the real anvil
chain through the outbox); an edited or deleted row fails and is named; a log rewritten from
the start (every hash recomputed) no longer contains the head anchored on chain."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from apps.audit.events import AuditEvent
from apps.audit.models import AuditChainHead, AuditLog
from apps.audit.services import audit_chain_seal, audit_log_write
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import audit_head_anchor
from tests.fixtures.chain import free_port

pytestmark = pytest.mark.django_db


def _write(n: int) -> list[AuditLog]:
    return [
        audit_log_write(
            event=AuditEvent.REPORT_VERIFIED,
            target_type="compliance.report",
            target_id="carbon",
            details={"verdict": "VERIFIED", "n": i},
        )  # fmt: skip
        for i in range(n)
    ]


def _verify() -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("verify_audit_log", stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_untouched_passes_edited_and_deleted_fail_naming_the_row():
    rows = _write(6)
    code, out = _verify()
    assert code == 0, out
    assert "OK: the audit log's hash chain is intact" in out
    assert "rows checked: 6" in out and "none anchored yet" in out

    AuditLog.objects.filter(pk=rows[2].pk).update(details={"verdict": "FORGED", "n": 2})
    code, out = _verify()
    assert code == 1
    assert f"FAILED at row id {rows[2].pk}" in out
    assert f"edited: row id {rows[2].pk}" in out

    AuditLog.objects.filter(pk=rows[2].pk).update(details={"verdict": "VERIFIED", "n": 2})
    assert _verify()[0] == 0  # put back exactly: intact again
    AuditLog.objects.filter(pk=rows[4].pk).delete()
    code, out = _verify()
    assert code == 1
    assert f"FAILED at row id {rows[5].pk}" in out
    assert f"chain position 5 is missing after row id {rows[3].pk}" in out


@pytest.mark.chain
def test_the_anchored_head_must_stay_in_the_chain(chain, settings):
    rows = _write(4)
    intent = audit_head_anchor()
    assert intent is not None and intent.payload["kind"] == "audit_head"
    anchored = intent.payload["digest"].removeprefix("0x")
    assert AuditLog.objects.get(row_hash=anchored).pk == rows[-1].pk
    assert audit_head_anchor().pk == intent.pk  # same head, same intent
    chain_outbox_sweep(wait_seconds=5)
    intent.refresh_from_db()
    assert intent.status == "confirmed", intent.error
    code, out = _verify()
    assert code == 0, out
    assert f"latest anchored head: {anchored} (position 4, row id {rows[-1].pk}); anchored " in out
    assert "[asked the chain]" in out

    settings.ANVIL_PORT = free_port()  # the chain does not answer: the local record does
    code, out = _verify()
    assert code == 0, out
    assert "[local record (the chain did not answer" in out

    # An insider deletes the first row and rebuilds the whole chain so every link holds again:
    # the head anchored on chain is no longer the hash of any row.
    AuditLog.objects.filter(pk=rows[0].pk).delete()
    AuditLog.objects.update(chain_seq=None, prev_hash="", row_hash="")
    AuditChainHead.objects.all().delete()
    audit_chain_seal(wait=True)
    code, out = _verify()
    assert code == 1
    assert f"the anchored head {anchored} is not the hash of any row" in out
    assert "NOT in the chain" in out


def test_the_head_is_anchored_again_only_when_the_log_moved():
    _write(2)
    first = audit_head_anchor()
    # only the anchor's own audit row came after the anchored head: nothing new to anchor
    assert audit_head_anchor().pk == first.pk
    _write(1)
    second = audit_head_anchor()
    assert second.pk != first.pk and second.payload["digest"] != first.payload["digest"]
    assert AuditLog.objects.get(row_hash=second.payload["digest"][2:]).chain_seq > 3
