"""`market_price --mechanism {sdr,mmr} --supply-wh X --demand-wh Y --retail P --feed-in Q`.

Prints {"seller_price": …, "buyer_price": …} per kWh, in the unit of --retail/--feed-in.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from apps.market import pricing


def _decimal(value: str) -> Decimal:
    try:
        result = Decimal(value)
    except InvalidOperation as exc:
        raise CommandError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise CommandError(f"not a finite number: {value!r}")
    return result


def _wh(value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise CommandError(f"not a whole number of Wh: {value!r}") from exc


class Command(BaseCommand):
    help = "Community price for one interval under SDR or MMR (formulas in docs/market.md)."

    def add_arguments(self, parser):
        parser.add_argument("--mechanism", choices=[pricing.SDR, pricing.MMR], required=True)
        parser.add_argument("--supply-wh", type=_wh, required=True, help="total surplus (TSP)")
        parser.add_argument("--demand-wh", type=_wh, required=True, help="total demand (TBP)")
        parser.add_argument("--retail", type=_decimal, required=True, help="grid price λb")
        parser.add_argument("--feed-in", type=_decimal, required=True, help="feed-in price λs")

    def handle(self, *args, **opts):
        try:
            prices = pricing.community_prices(
                opts["mechanism"],
                supply_wh=opts["supply_wh"],
                demand_wh=opts["demand_wh"],
                retail=opts["retail"],
                feed_in=opts["feed_in"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            json.dumps(
                {
                    "seller_price": float(prices.seller_price),
                    "buyer_price": float(prices.buyer_price),
                }
            )
        )
