"""`verify_trade --trade ID`: is this trade in its settlement's anchored Merkle root?

Rebuilds the trade's leaf (apps.chain.merkle.trade_leaf) and proof from the database, checks it
against the root stored for the run, and asks EnergyTrading.verifyTrade on chain. Prints JSON;
exits 1 when the trade is not in the root.
"""

from __future__ import annotations

import dataclasses
import json

from django.core.management.base import BaseCommand, CommandError

from apps.core.exceptions import ApplicationError
from apps.market.models import Trade
from apps.market.services import trade_proof, trade_verify_on_chain


class Command(BaseCommand):
    help = "Verify that a trade is in its settlement batch's Merkle root (off and on chain)."

    def add_arguments(self, parser):
        parser.add_argument("--trade", type=int, required=True)

    def handle(self, *args, **opts):
        trade = (
            Trade.objects.select_related("clearing__run", "seller", "buyer")
            .filter(pk=opts["trade"])
            .first()
        )
        if trade is None:
            raise CommandError(f"no trade {opts['trade']}")
        try:
            proof = trade_proof(trade=trade)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        on_chain = trade_verify_on_chain(proof=proof)
        report = dataclasses.asdict(proof)
        report["on_chain"] = on_chain if on_chain is not None else "unavailable"
        self.stdout.write(json.dumps(report, indent=2))
        if not proof.in_root or on_chain is False:
            raise SystemExit(1)
