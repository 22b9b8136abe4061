"""Acceptance 8 (issue 19): the standing claim instruction claims every member's certificates
hourly against their own consumption — own production, P2P purchases and shared-plant shares —
each certificate's Wh at most once, and the cooperative's market-based Scope 2 falls below its
location-based figure.

A compact, faithful version of the demo's December day: a prosumer (PV and household meter), a
neighbour who buys from them P2P, two shareholders of the community plant (one opted out), the
demo's factors (380 g/kWh location-based, 560 g/kWh residual mix) and winter-like production
(PV only between 08:00 and 15:00 UTC)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.incentives.models import AssetShare, Certificate
from apps.incentives.selectors import carbon_by_member
from apps.incentives.services import (
    certificates_auto_claim,
    certificates_issue,
    certificates_transfer_for_settlement,
    claim_instruction_set,
)

from .factories import (
    MemberFactory,
    MeterFactory,
    PVMeterFactory,
    SharedAssetFactory,
    emission_factors,
    readings,
    settled_run,
)

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 12, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _profile(day_wh: int, night_wh: int) -> list[int]:
    """96 quarter hours: `day_wh` from 08:00 to 15:00 UTC, `night_wh` otherwise."""
    return [day_wh if 8 <= q // 4 < 15 else night_wh for q in range(96)]


def _house(member, values):
    meter = MeterFactory(member=member, asset_kind="household", direction="import")
    readings(meter, DAY, values, export=False)
    return meter


def test_standing_instruction_claims_each_certificate_once_against_the_same_hour():
    emission_factors(location="380", residual="560")
    pv = PVMeterFactory()
    prosumer = pv.member
    readings(pv, DAY, _profile(600, 0))  # 2.4 kWh per daylight hour
    _house(prosumer, _profile(300, 50))
    neighbour = MemberFactory()
    _house(neighbour, _profile(300, 50))
    plant = SharedAssetFactory()
    holder, opted_out = MemberFactory(), MemberFactory()
    AssetShare.objects.create(asset=plant, member=holder, share_ppm=600_000)
    AssetShare.objects.create(asset=plant, member=opted_out, share_ppm=400_000)
    readings(plant.meter, DAY, _profile(600, 0))
    _house(holder, _profile(300, 50))
    _house(opted_out, _profile(300, 50))
    claim_instruction_set(member=opted_out, auto_claim=False)

    end = DAY + 24 * H
    certificates_issue(start=DAY, end=end, now=end + 3 * H)
    # The neighbour buys 1 kWh of each daylight hour from the prosumer P2P: the certificates
    # follow the trades.
    run, _ = settled_run([(prosumer, neighbour, DAY + h * H, 1000) for h in range(8, 15)])
    certificates_transfer_for_settlement(settlement_run=run)

    held = defaultdict(int)  # (member, hour) → active Wh before claiming
    for c in Certificate.objects.filter(status="active"):
        held[(c.owner_id, c.production_start)] += c.wh
    issued_by_token = {
        row["token_id"]: row["wh"]
        for row in Certificate.objects.filter(parent__isnull=True)
        .values("token_id")
        .annotate(wh=Sum("range_end") - Sum("range_start"))
    }

    summary = certificates_auto_claim(start=DAY, end=end)

    # Hour by hour: claimed = min(consumption, certificates held) for every member who did not
    # opt out; a certificate of hour H never covers another hour.
    from apps.meters.selectors import member_hourly_import

    consumption = member_hourly_import(start=DAY, end=end)
    claimed = defaultdict(int)
    for c in Certificate.objects.filter(status="claimed"):
        claimed[(c.owner_id, c.production_start)] += c.wh
    expected = {
        key: min(wh, consumption.get(key[0], {}).get(key[1], 0))
        for key, wh in held.items()
        if key[0] != opted_out.pk
    }
    assert {k: v for k, v in claimed.items() if v} == {k: v for k, v in expected.items() if v}
    assert summary.wh == sum(expected.values()) > 0
    assert claimed[(neighbour.pk, DAY + 10 * H)] == 1000  # the P2P purchase, its own hour
    assert claimed[(neighbour.pk, DAY + 16 * H)] == 0  # evening: no certificate of that hour
    assert claimed[(prosumer.pk, DAY + 10 * H)] == 1200  # own PV: 1,400 Wh left, 1,200 used
    # Partial claims split: the rest of the prosumer's 10:00 certificate stays active.
    assert (
        held[(prosumer.pk, DAY + 10 * H)] - 1200
        == 200
        == sum(
            c.wh
            for c in Certificate.objects.filter(
                owner=prosumer, production_start=DAY + 10 * H, status="active"
            )
        )
    )
    # Each certificate's Wh at most once: per token, claimed ≤ issued.
    by_token = defaultdict(int)
    for c in Certificate.objects.filter(status="claimed"):
        by_token[c.token_id] += c.wh
    assert all(wh <= issued_by_token[token] for token, wh in by_token.items())
    # The member who opted out keeps every certificate active.
    assert not Certificate.objects.filter(owner=opted_out, status="claimed").exists()
    assert Certificate.objects.filter(owner=opted_out, status="active").exists()
    log = AuditLog.objects.get(event=AuditEvent.CERTIFICATES_AUTO_CLAIMED)
    assert log.details["wh"] == summary.wh

    # The hourly task runs again: nothing is claimed twice.
    again = certificates_auto_claim(start=DAY, end=end)
    assert (again.certificates, again.wh) == (0, 0)
    assert Certificate.objects.filter(status="claimed").aggregate(
        wh=Sum("range_end") - Sum("range_start")
    )["wh"] == sum(expected.values())

    # The cooperative's Scope 2 for the month: market-based below location-based.
    rows = carbon_by_member(start=DAY, end=DAY + 31 * 24 * H)
    location = sum((r.result.location_kg for r in rows), Decimal(0))
    market = sum((r.result.market_kg for r in rows), Decimal(0))
    assert sum(r.result.covered_wh for r in rows) == sum(expected.values())
    assert market < location


def test_member_turns_the_standing_instruction_off_and_on_in_the_portal(client):
    member = MemberFactory()
    client.force_login(member.user)
    page = client.get("/incentives/certificates/").content.decode()
    assert 'id="auto-claim-on" checked' in page  # on by default

    client.post("/incentives/certificates/auto-claim/", {})
    assert (
        'id="auto-claim-on" checked' not in client.get("/incentives/certificates/").content.decode()
    )
    client.post("/incentives/certificates/auto-claim/", {"auto_claim": "on"})
    assert 'id="auto-claim-on" checked' in client.get("/incentives/certificates/").content.decode()
    assert AuditLog.objects.filter(event=AuditEvent.CLAIM_INSTRUCTION_SET).count() == 2
