"""Shared (community) assets: the share table and the pro-rata revenue split."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.incentives.allocation import ShareTableError, allocate, percent_to_ppm
from apps.incentives.allocation import validate_share_table as _validate
from apps.incentives.lock_objects import asset_shares_lock, shared_asset_lock
from apps.incentives.models import AssetShare, SharedAsset, SharedAssetCredit, SharedAssetPeriod
from apps.market.selectors import member_settled_output, settlement_runs_unsettled_count


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


def month_bounds_utc(month: date) -> tuple[date, datetime, datetime]:
    first = month.replace(day=1)
    nxt = first.replace(year=first.year + (first.month == 12), month=first.month % 12 + 1)
    return (
        first,
        datetime(first.year, first.month, 1, tzinfo=UTC),
        datetime(nxt.year, nxt.month, 1, tzinfo=UTC),
    )


@transaction.atomic
def shared_asset_period_settle(
    *, asset: SharedAsset, month: date, actor: Actor = None, now: datetime | None = None
) -> SharedAssetPeriod:
    """Allocate one month of a shared plant to its shareholders, once (idempotent).

    The plant's output is what market settlement settled for its meter's account (the
    cooperative's own member account): its export Wh and the net money credited for it (P2P
    sales and export at the settled prices). Per the plant's mode, the revenue in cents
    (`revenue_share`, remainders carried to the next month) or the Wh (`generation_kwh`) are
    split pro rata by largest remainder, so the credits sum exactly to the settled figure. The
    month must be over and its settlement runs settled."""
    now = now or timezone.now()
    first, start, end = month_bounds_utc(month)
    asset = shared_asset_lock(asset.pk)
    existing = SharedAssetPeriod.objects.filter(asset=asset, month=first).first()
    if existing is not None:
        return existing
    if end > now:
        raise ApplicationError("This month is not over yet.", {"month": f"{first:%Y-%m}"})
    owner_id = asset.meter.member_id
    if owner_id is None:
        raise ApplicationError(
            f"{asset.name}: its meter has no settlement account, so its output is not settled. "
            "Assign the meter to the cooperative's own member account.",
            {"asset": asset.name},
        )
    if settlement_runs_unsettled_count(start=start, end=end):
        raise ApplicationError(
            "The month's settlement is not complete yet.", {"month": f"{first:%Y-%m}"}
        )
    shares = asset_shares_lock(asset)
    weights = {s.member_id: s.share_ppm for s in shares}
    try:
        _validate(weights)
    except ShareTableError as exc:
        raise ApplicationError(f"{asset.name}: {exc}", {"asset": asset.name}) from exc
    settled = member_settled_output(member_id=owner_id, start=start, end=end)
    revenue_cents = int((settled.revenue * 100).to_integral_value(ROUND_HALF_EVEN))
    # Every shareholder's part of the settled production (shown to them in both modes).
    wh = allocate(settled.export_wh, weights, dict.fromkeys(weights, 0)).amounts
    cents = dict.fromkeys(weights, 0)
    if asset.mode == SharedAsset.Mode.REVENUE_SHARE:
        if revenue_cents < 0:
            raise ApplicationError(
                f"{asset.name} cost more than it earned in {first:%Y-%m}; nothing to share.",
                {"asset": asset.name, "revenue_cents": revenue_cents},
            )
        result = allocate(revenue_cents, weights, {s.member_id: s.revenue_carry for s in shares})
        cents = dict(result.amounts)
        for share in shares:
            share.revenue_carry = result.carry[share.member_id]
        AssetShare.objects.bulk_update(shares, ["revenue_carry"])
    period = SharedAssetPeriod.objects.create(
        asset=asset,
        month=first,
        mode=asset.mode,
        produced_wh=settled.export_wh,
        revenue_cents=revenue_cents,
    )
    SharedAssetCredit.objects.bulk_create(
        [
            SharedAssetCredit(
                period=period,
                member_id=member_id,
                share_ppm=weights[member_id],
                wh=wh[member_id],
                amount_cents=cents[member_id],
            )
            for member_id in sorted(weights)
        ]
    )
    audit_log_write(
        event=AuditEvent.SHARED_ASSET_PERIOD_SETTLED,
        actor=actor,
        target=period,
        details={
            "asset": asset.name,
            "month": f"{first:%Y-%m}",
            "mode": asset.mode,
            "produced_wh": settled.export_wh,
            "revenue_cents": revenue_cents,
            "wh": {str(k): v for k, v in sorted(wh.items())},
            "cents": {str(k): v for k, v in sorted(cents.items())},
        },
    )
    return period


def shared_assets_settle_month(
    *, month: date, actor: Actor = None, now: datetime | None = None
) -> dict[str, str]:
    """Settle the month for every shared asset; an asset that cannot be settled yet is reported
    (and retried by the next run), the others go ahead."""
    out: dict[str, str] = {}
    for asset in SharedAsset.objects.order_by("pk"):
        try:
            period = shared_asset_period_settle(asset=asset, month=month, actor=actor, now=now)
        except ApplicationError as exc:
            out[asset.name] = exc.message
            continue
        out[asset.name] = f"{period.produced_wh} Wh, {period.revenue_cents} cents"
    return out
