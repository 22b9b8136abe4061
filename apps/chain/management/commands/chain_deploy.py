"""`python manage.py chain_deploy [--force | --upgrade]` — idempotent deployment of the contracts,
or an upgrade: a new deployment plus a state migration (docs/chain.md, "Upgrading a deployment")."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.chain.services import chain_contracts_deploy, chain_contracts_upgrade
from apps.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Deploy the EnergySphere contracts to the configured network (once) and wire roles."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="redeploy even if recorded")
        parser.add_argument(
            "--upgrade",
            action="store_true",
            help="new deployment + state migration (the old contracts must be paused)",
        )

    def handle(self, *args, **options):
        try:
            if options["upgrade"]:
                result = chain_contracts_upgrade()
                self.stdout.write(json.dumps(result, indent=2, default=str))
                return
            addresses = chain_contracts_deploy(force=options["force"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(addresses, indent=2))
