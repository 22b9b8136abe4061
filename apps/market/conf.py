"""Market configuration from the environment (django-environ), with working local defaults.

Override any of them in Django settings (same name) or in the environment.
"""

from __future__ import annotations

from decimal import Decimal

import environ
from django.conf import settings

_env = environ.Env()

_DEFAULTS = {
    # Length of one settlement batch (one on-chain transaction), aligned to UTC midnight.
    "MARKET_SETTLEMENT_PERIOD_MINUTES": _env.int("MARKET_SETTLEMENT_PERIOD_MINUTES", default=1440),
    # How long after a period ends settlement waits for metered data before it first tries.
    "MARKET_METERING_DELAY_MINUTES": _env.int("MARKET_METERING_DELAY_MINUTES", default=30),
    # Orders generated this many intervals ahead (each run of the generation task).
    "MARKET_ORDER_HORIZON_INTERVALS": _env.int("MARKET_ORDER_HORIZON_INTERVALS", default=4),
    # Largest order accepted when a member's contracted power is unknown (Wh per interval).
    "MARKET_MAX_ORDER_WH": _env.int("MARKET_MAX_ORDER_WH", default=250_000),
    # How far ahead manual orders are accepted.
    "MARKET_MAX_DAYS_AHEAD": _env.int("MARKET_MAX_DAYS_AHEAD", default=7),
    # On-chain account of the cooperative (receives the netted balance against the grid);
    # empty: the chain operator's address.
    "MARKET_COOPERATIVE_ADDRESS": _env("MARKET_COOPERATIVE_ADDRESS", default=""),
    # Minor currency units per unit on chain (100: euro cents).
    "MARKET_MINOR_UNITS": _env.int("MARKET_MINOR_UNITS", default=100),
}


def get(name: str):
    return getattr(settings, name, _DEFAULTS[name])


MONEY_PLACES = Decimal("0.01")
