"""`billing_sepa --period YYYY-MM [--execution-date YYYY-MM-DD]`: the month's SEPA files.

Creates the pain.008 collection and the pain.001 payout file for the issued documents no file
carries yet and prints {"period", "files": [{"name", "kind", "count", "total"}],
"missing_mandate": [...]} as JSON. The files are stored with the billing run (staff download
them from the admin) and can be written out with --out DIR.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.billing.selectors import period_sepa_files
from apps.billing.services import parse_period, sepa_files_create
from apps.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Create the month's SEPA direct-debit (pain.008) and payout (pain.001) files."

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="the billed month, YYYY-MM")
        parser.add_argument("--execution-date", type=date.fromisoformat, default=None)
        parser.add_argument("--out", type=Path, default=None, help="also write the files here")

    def handle(self, *args, **opts):
        try:
            period = parse_period(opts["period"])
            result = sepa_files_create(
                period=period, actor="command", execution_date=opts["execution_date"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if opts["out"]:
            opts["out"].mkdir(parents=True, exist_ok=True)
            names = {f["name"] for f in result["files"]}
            for sepa_file in period_sepa_files(period=period):
                if sepa_file.name in names:
                    (opts["out"] / sepa_file.name).write_text(sepa_file.content)
        self.stdout.write(json.dumps(result))
