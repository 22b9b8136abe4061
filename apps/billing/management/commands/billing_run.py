"""`billing_run --period YYYY-MM [--dry-run] [--json]`: bill every member with a supply contract.

Prints the run's summary; with --json the JSON object
{"period", "invoices", "total_net", "total_vat", "total_gross", "direct_debit_total",
"payout_total", "sepa_files"} (amounts as decimal strings).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.billing.services import billing_run
from apps.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Monthly billing run: draft invoices of every member for one month."

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="the month to bill, YYYY-MM")
        parser.add_argument(
            "--dry-run", action="store_true", help="compute everything, store nothing"
        )
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args, **opts):
        try:
            summary = billing_run(period=opts["period"], dry_run=opts["dry_run"], actor="command")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if opts["json"]:
            self.stdout.write(json.dumps(summary))
            return
        label = "dry run" if opts["dry_run"] else "billing run"
        self.stdout.write(
            f"{label} {summary['period']}: {summary['invoices']} invoices, "
            f"net {summary['total_net']}, VAT {summary['total_vat']}, "
            f"gross {summary['total_gross']}, direct debit {summary['direct_debit_total']}, "
            f"payouts {summary['payout_total']}"
        )
