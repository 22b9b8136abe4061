"""Pro-rata allocation of a whole number of units (Wh, or minor currency units) among the
shareholders of a community asset — a pure module, no Django import.

Each period's total is handed out *exactly*: the allocations are non-negative integers that sum to
the total, so nothing is ever lost or created. What cannot be paid in whole units is carried
forward per shareholder as a signed *debt* (exact, in units of 1/weight_total of a unit): a
shareholder who was rounded down this period is first in line next period, one who was rounded up
is last. The debts always sum to zero, and every shareholder's cumulative allocation stays within
two units of its exact cumulative entitlement (largest-remainder / Hamilton method applied to the
entitlement plus the carried debt).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

#: Shares are stored as integer parts per million (100 % == 1_000_000).
PPM = 1_000_000


class ShareTableError(ValueError):
    """A share table that cannot be used (empty, negative, or not summing to 100 %)."""


@dataclass(frozen=True)
class Allocation:
    amounts: dict[Any, int]
    carry: dict[Any, int]


def percent_to_ppm(percent: Decimal) -> int:
    """Convert a percentage with at most four decimals into parts per million (exactly)."""
    value = Decimal(percent) * 10_000
    if value != value.to_integral_value():
        raise ShareTableError(f"Share {percent}% has more than four decimals.")
    return int(value)


def validate_share_table(weights: Mapping[Any, int], total: int = PPM) -> None:
    """Raise ShareTableError unless the weights are positive and sum to exactly `total`."""
    if not weights:
        raise ShareTableError("The share table is empty: an asset needs at least one shareholder.")
    negative = [key for key, weight in weights.items() if weight <= 0]
    if negative:
        raise ShareTableError(f"Shares must be positive; not for {sorted(map(str, negative))}.")
    got = sum(weights.values())
    if got != total:
        pct = Decimal(got) * 100 / Decimal(total)
        raise ShareTableError(
            f"Shares sum to {pct.normalize():f}%, they must sum to exactly 100%.",
        )


def allocate(
    total: int,
    weights: Mapping[Any, int],
    carry: Mapping[Any, int] | None = None,
) -> Allocation:
    """Split `total` whole units among `weights` pro rata, carrying remainders forward.

    `weights` are positive integers (e.g. parts per million) — their sum W defines the unit of the
    carry. `carry` maps a key to its debt from earlier periods in units of 1/W (missing keys: 0;
    keys not in `weights` are ignored). Returns the whole-unit amounts (summing to `total`) and
    the new carry (summing to the same as the incoming carry of the current shareholders).
    """
    if total < 0:
        raise ValueError("total must be non-negative")
    validate_share_table(weights, sum(weights.values()) or 1)
    keys = sorted(weights, key=lambda k: (str(type(k)), k))  # deterministic tie-breaking
    wsum = sum(weights.values())
    carry = carry or {}
    entitled = {k: total * weights[k] + int(carry.get(k, 0)) for k in keys}
    amounts = {k: max(0, entitled[k] // wsum) for k in keys}

    def remainder(k: Hashable) -> int:
        return entitled[k] - amounts[k] * wsum

    left = total - sum(amounts.values())
    if left > 0:  # hand out the rest, largest remainder first (ties: key order)
        heap = [(-remainder(k), i) for i, k in enumerate(keys)]
        heapq.heapify(heap)
        while left > 0:
            _, i = heapq.heappop(heap)
            amounts[keys[i]] += 1
            left -= 1
            heapq.heappush(heap, (-remainder(keys[i]), i))
    elif left < 0:  # only after clamping a negative debt at zero: take back, smallest first
        heap = [(remainder(k), i) for i, k in enumerate(keys) if amounts[k] > 0]
        heapq.heapify(heap)
        while left < 0:
            _, i = heapq.heappop(heap)
            amounts[keys[i]] -= 1
            left += 1
            if amounts[keys[i]] > 0:
                heapq.heappush(heap, (remainder(keys[i]), i))
    return Allocation(amounts=amounts, carry={k: remainder(k) for k in keys})
