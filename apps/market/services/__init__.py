"""Write services of the market app (the only writers). Split by concern; import from here."""

from apps.market.services.intervals import interval_clear, settlement_run_close, settlement_run_for
from apps.market.services.orders import (
    order_cancel,
    order_place,
    orders_generate,
    preference_update,
)
from apps.market.services.settlement import (
    settlement_corrections_scan,
    settlement_run_anchor,
    settlement_run_meter,
    settlement_run_resettle,
    settlement_run_settle,
    settlement_runs_process,
    trade_proof,
    trade_verify_on_chain,
)
from apps.market.services.statements import (
    statement_csv,
    statement_generate,
    statement_issue,
    statement_pdf,
    statement_review,
)
from apps.market.services.statements_bulk import statements_generate_for_members
from apps.market.services.tariffs import tariff_create

__all__ = [
    "interval_clear",
    "order_cancel",
    "order_place",
    "orders_generate",
    "preference_update",
    "settlement_corrections_scan",
    "settlement_run_anchor",
    "settlement_run_close",
    "settlement_run_for",
    "settlement_run_meter",
    "settlement_run_resettle",
    "settlement_run_settle",
    "settlement_runs_process",
    "tariff_create",
    "statement_csv",
    "statement_generate",
    "statement_issue",
    "statement_pdf",
    "statement_review",
    "statements_generate_for_members",
    "trade_proof",
    "trade_verify_on_chain",
]
