"""`python manage.py chain_outbox [--once]` — run the outbox worker loop in the foreground.

The Celery `chain` queue runs the same sweep; this command is for operations and tests.
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand

from apps.chain.outbox import chain_outbox_sweep


class Command(BaseCommand):
    help = "Process the chain transaction outbox (recover, sign, send, confirm)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one sweep, then exit")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between sweeps")

    def handle(self, *args, **options):
        while True:
            counts = chain_outbox_sweep()
            self.stdout.write(json.dumps(counts))
            if options["once"]:
                return
            time.sleep(options["interval"])
