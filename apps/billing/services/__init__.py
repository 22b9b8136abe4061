"""Write services of the billing app (the only writers). Split by concern; import from here."""

from apps.billing.services.bank import bank_statement_import, bank_transaction_assign
from apps.billing.services.dunning import dispute_close, dispute_open, dunning_run, reminder_send
from apps.billing.services.invoices import (
    invoice_credit,
    invoice_issue,
    invoice_rectify,
    invoice_review,
    invoices_issue,
    invoices_review,
)
from apps.billing.services.membership import (
    join_apply,
    join_approve,
    join_reject,
    join_verify,
    member_leave,
    member_site_add,
)
from apps.billing.services.moves import site_move
from apps.billing.services.payments import mandate_create, mandate_revoke, sepa_files_create
from apps.billing.services.runs import billing_run, parse_period

__all__ = [
    "bank_statement_import",
    "bank_transaction_assign",
    "billing_run",
    "dispute_close",
    "dispute_open",
    "dunning_run",
    "invoice_credit",
    "invoice_issue",
    "invoice_rectify",
    "invoice_review",
    "invoices_issue",
    "invoices_review",
    "join_apply",
    "join_approve",
    "join_reject",
    "join_verify",
    "member_leave",
    "member_site_add",
    "mandate_create",
    "mandate_revoke",
    "parse_period",
    "reminder_send",
    "sepa_files_create",
    "site_move",
]
