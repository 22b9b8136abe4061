"""Incentives write services (certificates, rewards, shared assets)."""

from apps.incentives.services.certificates import (
    certificate_cancel,
    certificate_claim,
    certificate_token_id,
    certificates_claim_for_consumption,
    certificates_issue,
    certificates_issue_for_hour,
    certificates_transfer_for_settlement,
)
from apps.incentives.services.claims import (
    AutoClaimSummary,
    certificates_auto_claim,
    claim_instruction_set,
)
from apps.incentives.services.redemptions import (
    redemptions_confirm,
    redemptions_credit,
    reward_redeem,
)
from apps.incentives.services.rewards import (
    reward_grant_for_dr_performance,
    rewards_compute_for_settlement,
    rewards_grant_for_production,
)
from apps.incentives.services.shares import (
    shared_asset_period_settle,
    shared_asset_revenue_allocate,
    shared_asset_shares_set,
    shared_assets_settle_month,
)

__all__ = [
    "AutoClaimSummary",
    "certificates_auto_claim",
    "claim_instruction_set",
    "certificate_cancel",
    "certificate_claim",
    "certificate_token_id",
    "certificates_claim_for_consumption",
    "certificates_issue",
    "certificates_issue_for_hour",
    "certificates_transfer_for_settlement",
    "redemptions_confirm",
    "redemptions_credit",
    "reward_grant_for_dr_performance",
    "reward_redeem",
    "rewards_compute_for_settlement",
    "rewards_grant_for_production",
    "shared_asset_period_settle",
    "shared_asset_revenue_allocate",
    "shared_assets_settle_month",
    "shared_asset_shares_set",
]
