"""`python manage.py verify_audit_log` — walk the audit log's hash chain and check its anchors.

Seals the committed rows not chained yet, then walks the chain in order and names the first
broken row: an edited row (its hash or its content digest no longer matches), a deleted one (a
missing position or a previous hash that is not the hash of the row before, or a chain shorter
than its head). The latest heads anchored on chain (kind audit_head) must each be the hash of a
row in the chain; the newest one is also looked up on chain (or, when the chain does not answer,
in the local outbox and indexer records — the output says which). Exits 1 on any problem.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.audit.selectors import audit_chain_verify
from apps.audit.services import audit_chain_seal
from apps.chain.selectors import document_anchor_status, document_anchors_confirmed
from apps.chain.services import AUDIT_HEAD_KIND


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and its anchored heads; exit 1 if broken."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--anchors", type=int, default=20, help="How many of the latest anchored heads."
        )

    def handle(self, *args, **options) -> None:
        sealed = audit_chain_seal(wait=True)
        anchored = document_anchors_confirmed(kind=AUDIT_HEAD_KIND, limit=options["anchors"])
        check = audit_chain_verify(anchored_heads=anchored)
        out = self.stdout.write
        out(f"rows checked: {check.rows_checked} (sealed now: {sealed})")
        out(f"chain head: position {check.last_seq}, row id {check.last_row_id}, {check.last_hash}")
        if check.redacted_rows:
            out(f"rows redacted by erasure (recorded in the chain): {check.redacted_rows}")
        if check.unsealed:
            out(f"rows not chained yet (their transaction is still open): {check.unsealed}")
        problems = list(check.problems)
        if anchored:
            latest = anchored[0].removeprefix("0x")
            status = document_anchor_status(kind=AUDIT_HEAD_KIND, digest="0x" + latest)
            where = check.anchored_heads.get(latest)
            position = f"position {where[0]}, row id {where[1]}" if where else "NOT in the chain"
            if status.source == "chain":
                source = "asked the chain"
            else:
                source = f"local record (the chain did not answer: {status.chain_error})"
            state = "anchored" if status.anchored else "NOT anchored"
            out(f"latest anchored head: {latest} ({position}); {state} [{source}]")
            if not status.anchored:
                problems.append(f"the latest anchored head {latest} is not anchored on chain")
        else:
            out("latest anchored head: none anchored yet")
        if problems:
            if check.first_broken_row is not None:
                out(f"FAILED at row id {check.first_broken_row}")
            else:
                out("FAILED")
            for problem in problems:
                out(f"  - {problem}")
            raise SystemExit(1)
        out("OK: the audit log's hash chain is intact")
