"""`python manage.py chain_deploy [--force]` — idempotent deployment of the contracts."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.chain.services import chain_contracts_deploy
from apps.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Deploy the EnergySphere contracts to the configured network (once) and wire roles."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="redeploy even if recorded")

    def handle(self, *args, **options):
        try:
            addresses = chain_contracts_deploy(force=options["force"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(addresses, indent=2))
