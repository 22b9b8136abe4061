"""Shared assets: the share table must sum to 100 % (nothing half-written); revenue is split in
whole minor units with remainders carried forward."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.core.exceptions import ApplicationError
from apps.incentives.models import AssetShare
from apps.incentives.services import shared_asset_revenue_allocate, shared_asset_shares_set

from .factories import MemberFactory, SharedAssetFactory

pytestmark = pytest.mark.django_db


def test_a_share_table_not_summing_to_100_percent_is_refused_and_nothing_changes():
    asset = SharedAssetFactory()
    a, b = MemberFactory(), MemberFactory()
    shared_asset_shares_set(asset=asset, shares={a: Decimal("60"), b: Decimal("40")})
    with pytest.raises(ApplicationError, match=r"sum to 99\.5%, they must sum to exactly 100%"):
        shared_asset_shares_set(asset=asset, shares={a: Decimal("59.5"), b: Decimal("40")})
    table = dict(AssetShare.objects.filter(asset=asset).values_list("member_id", "share_ppm"))
    assert table == {a.pk: 600_000, b.pk: 400_000}
    assert AuditLog.objects.filter(event=AuditEvent.SHARED_ASSET_SHARES_SET).count() == 1


def test_revenue_is_split_exactly_with_remainders_carried_forward():
    asset = SharedAssetFactory()
    members = MemberFactory.create_batch(3)
    shared_asset_shares_set(
        asset=asset, shares={members[0]: Decimal("33.3334"), members[1]: Decimal("33.3333"),
                             members[2]: Decimal("33.3333")},
    )  # fmt: skip
    totals = dict.fromkeys((m.pk for m in members), 0)
    for period in range(10):
        split = shared_asset_revenue_allocate(asset=asset, amount_minor=100, period_ref=str(period))
        assert sum(split.values()) == 100
        for member_id, amount in split.items():
            totals[member_id] += amount
    # 1,000 minor units over ten periods: everyone gets 333 or 334, none lost or created.
    assert sum(totals.values()) == 1000
    assert sorted(totals.values()) == [333, 333, 334]


def test_a_shared_plant_with_a_broken_share_table_is_not_certified():
    from datetime import UTC, datetime, timedelta

    from apps.incentives.models import Certificate
    from apps.incentives.services import certificates_issue

    from .factories import readings

    asset = SharedAssetFactory()
    a, b = MemberFactory(), MemberFactory()
    shared_asset_shares_set(asset=asset, shares={a: Decimal("50"), b: Decimal("50")})
    AssetShare.objects.filter(member=b).update(share_ppm=400_000)  # e.g. edited in the admin
    t0 = datetime(2026, 6, 2, 9, tzinfo=UTC)
    readings(asset.meter, t0, [100] * 4)
    summary = certificates_issue(start=t0, end=t0 + timedelta(hours=1), now=t0 + timedelta(days=1))
    assert summary.wh == 0 and "must sum to exactly 100%" in summary.skipped[0]["why"]
    assert not Certificate.objects.exists()
