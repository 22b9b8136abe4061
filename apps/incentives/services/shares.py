"""Shared (community) assets: the share table and the pro-rata revenue split."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.incentives.allocation import ShareTableError, allocate, percent_to_ppm
from apps.incentives.allocation import validate_share_table as _validate
from apps.incentives.lock_objects import asset_shares_lock, shared_asset_lock
from apps.incentives.models import AssetShare, SharedAsset


@transaction.atomic
def shared_asset_shares_set(
    *, asset: SharedAsset, shares: dict[Member, Decimal], actor: Actor = None
) -> list[AssetShare]:
    """Replace an asset's share table ({member: percent}); must sum to exactly 100 %.

    Nothing is written unless the whole table is valid. Carried remainders restart at zero.
    """
    try:
        table = {m.pk: percent_to_ppm(Decimal(str(p))) for m, p in shares.items()}
        _validate(table)
    except ShareTableError as exc:
        raise ApplicationError(
            str(exc), {"shares": {str(k): str(v) for k, v in shares.items()}}
        ) from exc
    shared_asset_lock(asset.pk)
    AssetShare.objects.filter(asset=asset).delete()
    rows = AssetShare.objects.bulk_create(
        [
            AssetShare(asset=asset, member_id=mid, share_ppm=ppm)
            for mid, ppm in sorted(table.items())
        ]
    )
    audit_log_write(
        event=AuditEvent.SHARED_ASSET_SHARES_SET,
        actor=actor,
        target=asset,
        details={"shares_ppm": {str(k): v for k, v in sorted(table.items())}},
    )
    return rows


@transaction.atomic
def shared_asset_revenue_allocate(
    *, asset: SharedAsset, amount_minor: int, period_ref: str, actor: Actor = None
) -> dict[int, int]:
    """Split revenue (integer minor units) pro rata, remainders carried forward per member."""
    shares = asset_shares_lock(asset)
    if not shares:
        raise ApplicationError(f"Shared asset {asset.name} has no share table.", {})
    result = allocate(
        amount_minor,
        {s.member_id: s.share_ppm for s in shares},
        {s.member_id: s.revenue_carry for s in shares},
    )
    for share in shares:
        share.revenue_carry = result.carry[share.member_id]
    AssetShare.objects.bulk_update(shares, ["revenue_carry"])
    audit_log_write(
        event=AuditEvent.SHARED_ASSET_REVENUE_ALLOCATED,
        actor=actor,
        target=asset,
        details={"period": period_ref, "amount_minor": amount_minor, "split": result.amounts},
    )
    return dict(result.amounts)
