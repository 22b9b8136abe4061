"""The audit log is hash-chained: each sealed row carries its position, the previous row's hash
and its own; concurrent writers (real threads, real PostgreSQL) never fork the chain; an edited
or deleted row is named by the walk; erasure's scrub stays verifiable."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from apps.audit.events import AuditEvent
from apps.audit.hashchain import GENESIS
from apps.audit.models import AuditLog
from apps.audit.selectors import audit_chain_head, audit_chain_verify
from apps.audit.services import audit_chain_seal, audit_details_scrub, audit_log_write


def _write(n: int, *, name: str = "Ada Lovelace") -> list[AuditLog]:
    return [
        audit_log_write(
            event=AuditEvent.MEMBER_ERASED,
            actor="staff@example.org",
            target_type="accounts.member",
            target_id=i,
            details={"member": f"M{i:05d}", "name": name, "amount": "12.50"},
        )
        for i in range(n)
    ]


@pytest.mark.django_db
def test_an_untouched_log_verifies_and_every_row_links_to_the_one_before():
    rows = _write(5)
    assert audit_chain_seal() == 5
    assert audit_chain_seal() == 0  # nothing new
    sealed = list(AuditLog.objects.order_by("chain_seq"))
    assert [r.pk for r in sealed] == [r.pk for r in rows]
    assert [r.chain_seq for r in sealed] == [1, 2, 3, 4, 5]
    assert sealed[0].prev_hash == GENESIS
    for before, row in zip(sealed, sealed[1:], strict=False):
        assert row.prev_hash == before.row_hash and len(row.row_hash) == 64
    check = audit_chain_verify()
    assert check.ok and check.rows_checked == 5, check.problems
    assert audit_chain_head() == (5, sealed[-1].row_hash)


@pytest.mark.django_db
def test_an_edited_row_is_named():
    rows = _write(4)
    audit_chain_seal()
    AuditLog.objects.filter(pk=rows[2].pk).update(details={"member": "M00002", "amount": "1.00"})
    check = audit_chain_verify()
    assert not check.ok and check.first_broken_row == rows[2].pk
    assert f"edited: row id {rows[2].pk}" in check.problems[0]


@pytest.mark.django_db
def test_an_edited_row_with_its_hashes_recomputed_breaks_the_next_link():
    from apps.audit.hashchain import content_digest, row_digest

    rows = _write(4)
    audit_chain_seal()
    row = AuditLog.objects.get(pk=rows[1].pk)
    row.event = "member.created"
    row.content_sha256 = content_digest(actor_label=row.actor_label, details=row.details)
    row.row_hash = row_digest(
        chain_seq=row.chain_seq, row_id=row.pk, created_at=row.created_at, event=row.event,
        target_type=row.target_type, target_id=row.target_id,
        content_sha256=row.content_sha256, prev_hash=row.prev_hash,
    )  # fmt: skip
    row.save()
    check = audit_chain_verify()
    assert check.first_broken_row == rows[2].pk
    assert (
        f"row id {rows[2].pk}: its previous hash is not the hash of row id {rows[1].pk}"
        in (check.problems[0])
    )


@pytest.mark.django_db
def test_a_deleted_row_is_named_by_the_gap_it_leaves():
    rows = _write(5)
    audit_chain_seal()
    AuditLog.objects.filter(pk=rows[2].pk).delete()
    check = audit_chain_verify()
    assert not check.ok and check.first_broken_row == rows[3].pk
    assert check.problems[0] == (
        f"deleted: chain position 3 is missing after row id {rows[1].pk} "
        f"(row id {rows[3].pk} is at position 4)"
    )


@pytest.mark.django_db
def test_deleting_the_last_rows_is_caught_by_the_head():
    rows = _write(5)
    audit_chain_seal()
    AuditLog.objects.filter(pk__in=[rows[3].pk, rows[4].pk]).delete()
    check = audit_chain_verify()
    assert not check.ok
    assert "the chain ends at position 3" in check.problems[0]
    assert "its head is at position 5" in check.problems[0]


@pytest.mark.django_db
def test_erasure_scrub_stays_verifiable_but_an_unrecorded_edit_does_not():
    rows = _write(3)
    audit_chain_seal()
    assert audit_details_scrub(texts=["Ada Lovelace"], replacement="erased-1") == 3
    audit_chain_seal()
    assert not AuditLog.objects.filter(details__name="Ada Lovelace").exists()
    redaction = AuditLog.objects.get(event=AuditEvent.AUDIT_LOG_REDACTED)
    assert set(redaction.details["rows"]) == {str(r.pk) for r in rows}
    assert "Ada" not in str(redaction.details)
    check = audit_chain_verify()
    assert check.ok, check.problems
    assert check.redacted_rows == 3
    # an edit after the scrub that no redaction row records is still an edit
    AuditLog.objects.filter(pk=rows[0].pk).update(details={"name": "erased-1", "amount": "0"})
    check = audit_chain_verify()
    assert check.first_broken_row == rows[0].pk and "no redaction row" in check.problems[0]


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    """Eight threads, each with its own PostgreSQL connection, write and commit audit rows at
    the same time; every commit seals (skipping while another seal holds the head). The chain
    ends up one line: positions 1..N, each previous hash the hash of the row before."""
    threads_n, per_thread = 8, 15
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    audit_log_write(event=AuditEvent.REPORT_VERIFIED, target_type="t",
                                    target_id=f"{k}-{i}", details={"i": i})  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    audit_chain_seal(wait=True)  # a row whose commit found the head busy
    total = threads_n * per_thread
    rows = list(AuditLog.objects.order_by("chain_seq").values_list("chain_seq", "prev_hash",
                                                                    "row_hash"))  # fmt: skip
    assert len(rows) == total
    assert [r[0] for r in rows] == list(range(1, total + 1))
    assert rows[0][1] == GENESIS
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, total))
    assert len({r[1] for r in rows}) == total  # no two rows share a predecessor: no fork
    check = audit_chain_verify()
    assert check.ok and check.rows_checked == total and check.unsealed == 0, check.problems
