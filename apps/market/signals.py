"""Signals the market app sends to the apps above it in the app order, which it never imports.

`settlement_run_settled` is sent by `apps.market.services.settlement.settlement_run_settle`
inside its transaction, once a run has just become SETTLED, with `run` (the SettlementRun) and
`actor`. Receivers run in that transaction: an exception in one rolls the settlement back.
`apps.incentives.receivers` moves certificates seller → buyer and grants the period's
local-renewable rewards.
"""

from django.dispatch import Signal

settlement_run_settled = Signal()
