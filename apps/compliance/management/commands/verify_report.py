"""`python manage.py verify_report FILE [--against-db]` — verify a downloaded report.

Recomputes the SHA-256 of the data the file carries and compares it with the hash it declares
(and, for a PDF, with the hash printed on it); checks the cooperative's seal; asks the chain
whether the content hash is anchored (MeterOracle document anchor; when the chain does not
answer, the local outbox and indexer records, and the output says which answered); checks every
on-chain anchor it lists against the chain app's records; with --against-db rebuilds the report
from the database for the same period and compares. Prints JSON with the verdict (VERIFIED,
NOT_YET_ANCHORED, TAMPERED or FORGED); exits 0 for VERIFIED, 2 for NOT_YET_ANCHORED (try again
once the outbox has sent the anchor), 1 otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.compliance.reports import report_verify
from apps.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Verify an EnergySphere report file (CSV, XLSX or PDF)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--against-db",
            action="store_true",
            help="Also rebuild the report from the database and compare the content hash.",
        )

    def handle(self, *args, **options) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            with path.open("rb") as stream:  # a CSV is read and hashed in chunks
                result = report_verify(stream, against_db=options["against_db"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        audit_log_write(
            event=AuditEvent.REPORT_VERIFIED,
            target_type="compliance.report",
            target_id=result.kind,
            details={"file": path.name, "verdict": result.verdict, "hash": result.computed_hash},
        )
        self.stdout.write(json.dumps({"file": str(path), **result.as_dict()}, indent=2))
        if result.verdict == "NOT_YET_ANCHORED":
            raise SystemExit(2)
        if result.verdict != "VERIFIED":
            raise SystemExit(1)
