"""`billing_camt_import FILE`: import a camt.053 bank statement and reconcile it.

Prints {"message_id", "entries", "matched", "unmatched"} as JSON. A file that is not a camt.053,
is for another account or was imported before is refused (exit status 1) and nothing is
imported.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.billing.services import bank_statement_import
from apps.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Import a camt.053 bank statement and match its entries to invoices."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, **opts):
        try:
            content = opts["file"].read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {opts['file']}: {exc.strerror}.") from exc
        try:
            statement = bank_statement_import(content=content, actor="command")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        rows = list(statement.transactions.values_list("status", flat=True))
        self.stdout.write(
            json.dumps(
                {
                    "message_id": statement.message_id,
                    "entries": statement.entry_count,
                    "matched": rows.count("matched"),
                    "unmatched": rows.count("unmatched"),
                }
            )
        )
