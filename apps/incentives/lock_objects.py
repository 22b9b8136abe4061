"""Row locks of the incentives app (see apps/core/locks.py).

Certificates are always locked in primary-key order and then put in the order their caller
works in (newest range first to cancel a correction, by token and range to transfer), so a
correction and a transfer touching the same certificates cannot deadlock.
"""

from __future__ import annotations

from datetime import datetime

from apps.core.locks import lock_first, lock_row, lock_rows
from apps.incentives.models import (
    AssetShare,
    Certificate,
    ClaimInstruction,
    Redemption,
    RewardAccount,
    SharedAsset,
)


def shared_asset_lock(asset_id: int) -> SharedAsset:
    return lock_row(SharedAsset.objects.all(), asset_id)


def asset_shares_lock(asset: SharedAsset, *, with_members: bool = False) -> list[AssetShare]:
    """The asset's share table by member; `with_members` joins (and so also locks) the members."""
    queryset = AssetShare.objects.filter(asset=asset)
    if with_members:
        queryset = queryset.select_related("member")
    return sorted(lock_rows(queryset), key=lambda share: share.member_id)


def certificate_lock(certificate_id: int) -> Certificate | None:
    """The certificate with its owner and device, or None when there is none."""
    return lock_first(
        Certificate.objects.select_related("owner", "device").filter(pk=certificate_id)
    )


def active_certificates_lock_for_correction(token_id: int) -> list[Certificate]:
    """The token's active certificates, newest serial range first (cancelled from the end)."""
    rows = lock_rows(
        Certificate.objects.filter(token_id=token_id, status=Certificate.Status.ACTIVE)
    )
    return sorted(rows, key=lambda cert: cert.range_end, reverse=True)


def active_certificates_lock_for_transfer(
    *, seller_id: int, hour_start: datetime
) -> list[Certificate]:
    """The seller's active certificates of the production hour, by token and serial range."""
    rows = lock_rows(
        Certificate.objects.select_related("owner").filter(
            owner_id=seller_id, production_start=hour_start, status=Certificate.Status.ACTIVE
        )
    )
    return sorted(rows, key=lambda cert: (cert.token_id, cert.range_start))


def reward_account_lock(member_id: int) -> RewardAccount:
    """The member's redeemable-balance row, created on first use, locked."""
    account, _ = RewardAccount.objects.get_or_create(member_id=member_id)
    return lock_row(RewardAccount.objects.all(), account.pk)


def redemptions_lock(*, status: str, ids: list[int] | None = None) -> list[Redemption]:
    """Redemptions in `status` (optionally only `ids`), locked in primary-key order."""
    queryset = Redemption.objects.filter(status=status)
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    return sorted(lock_rows(queryset), key=lambda r: r.pk)


def claim_instruction_lock(member_id: int) -> ClaimInstruction:
    """The member's standing claim instruction, created (on) on first use, locked."""
    instruction, _ = ClaimInstruction.objects.get_or_create(member_id=member_id)
    return lock_row(ClaimInstruction.objects.all(), instruction.pk)
