"""Signals the grid app sends to the apps above it in the app order, which it never imports.

`dr_performance_measured` is sent by `apps.grid.services.dr.dr_event_measure` inside its
transaction for every opted-in site whose performance was measured, with `member`,
`performance_wh` (Wh delivered against the baseline), `event_ref` ("<event pk>:<connection point
pk>"), `at` (the end of the event) and `actor`. A receiver that rewards the performance returns a
`DRRewardGranted`, which the participation records; any other return value is ignored.
`apps.incentives.receivers` grants the demand-response reward.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.dispatch import Signal

dr_performance_measured = Signal()


@dataclass(frozen=True, slots=True)
class DRRewardGranted:
    """A reward granted for one site's DR performance: whole tokens and the reward's reference."""

    tokens: int
    ref: str
