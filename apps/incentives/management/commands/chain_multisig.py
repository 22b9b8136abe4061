"""`python manage.py chain_multisig ACTION` — privileged calls through the staff multisig.

Actions: `reward-rules-sync` (mirror the incentives app's reward rules on chain),
`pause CONTRACT`, `unpause CONTRACT`. On the local chain the development signers execute the
proposal; elsewhere the command prints the proposal (target + calldata) for staff to sign.

The command lives in the incentives app because its main action reads the reward rules; the chain
app below it provides the multisig call.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.chain.client import CONTRACT_NAMES
from apps.chain.multisig import multisig_call
from apps.core.exceptions import ApplicationError
from apps.incentives.services.chain_rules import reward_rules_sync


class Command(BaseCommand):
    help = "Privileged contract calls through the staff multisig."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["reward-rules-sync", "pause", "unpause"])
        parser.add_argument("contract", nargs="?", choices=CONTRACT_NAMES[1:])

    def handle(self, *args, **options):
        action = options["action"]
        try:
            if action == "reward-rules-sync":
                proposals = reward_rules_sync()
            else:
                if not options["contract"]:
                    raise CommandError(f"{action} needs a contract name")
                proposals = [multisig_call(contract=options["contract"], function=action, args=())]
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        for p in proposals:
            self.stdout.write(
                json.dumps(
                    {"multisig": p.multisig, "target": p.target, "function": p.function,
                     "args": [str(a) for a in p.args], "data": p.data,
                     "executed_tx": p.executed_tx or None}
                )
            )  # fmt: skip
        if not proposals:
            self.stdout.write("nothing to change")
