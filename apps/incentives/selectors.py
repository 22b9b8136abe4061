"""Reads of the incentives app. Members only ever see their own certificates and rewards: the
member selectors filter by the member, so another member's certificate is simply not found (404)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404

from apps.accounts.models import Member
from apps.core.exceptions import ApplicationError
from apps.incentives import conf, energy
from apps.incentives.carbon import CarbonResult, ClaimedCertificate, scope2
from apps.incentives.models import (
    Certificate,
    CertificateTransfer,
    ClaimInstruction,
    EmissionFactor,
    Redemption,
    Reward,
    SharedAssetCredit,
)

if TYPE_CHECKING:
    from apps.accounts.models import Member


def member_certificates(*, member, status: str | None = None) -> QuerySet[Certificate]:
    qs = Certificate.objects.filter(owner=member).select_related("device")
    if status:
        qs = qs.filter(status=status)
    return qs.exclude(status=Certificate.Status.TRANSFERRED).order_by("-production_start", "pk")


def member_certificate_get(*, member, certificate_id: int) -> Certificate:
    cert = (
        Certificate.objects.filter(owner=member, pk=certificate_id).select_related("device").first()
    )
    if cert is None:
        raise Http404("No such certificate.")
    return cert


def member_certificate_totals(*, member) -> dict[str, int]:
    totals = dict.fromkeys(Certificate.Status.values, 0)
    for status, start, end in Certificate.objects.filter(owner=member).values_list(
        "status", "range_start", "range_end"
    ):
        totals[status] += end - start
    return totals


def member_claim_instruction(*, member) -> bool:
    """Whether the member's certificates are auto-claimed (on unless they opted out)."""
    return not ClaimInstruction.objects.filter(member=member, auto_claim=False).exists()


def member_rewards(*, member) -> QuerySet[Reward]:
    return Reward.objects.filter(member=member).select_related("rule")


def member_reward_totals(*, member: Member) -> dict[str, dict[str, Any]]:
    rows = (
        Reward.objects.filter(member=member)
        .values("kind")
        .annotate(tokens=Sum("tokens"), basis_wh=Sum("basis_wh"), n=Count("id"))
    )
    return {r["kind"]: r for r in rows}


def registry_certificates(
    *, start: datetime, end: datetime, status: str | None = None
) -> QuerySet[Certificate]:
    """Every certificate holding (leaves and history) produced in [start, end) — staff/auditor."""
    qs = Certificate.objects.filter(
        production_start__gte=start, production_start__lt=end
    ).select_related("owner", "device", "parent")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("production_start", "token_id", "range_start", "pk")


def member_certificate_holdings(*, member: Member) -> QuerySet[Certificate]:
    """Every holding the member has or had (transferred ones too), with the device, in registry
    order (data export)."""
    return (
        Certificate.objects.filter(owner=member)
        .select_related("device")
        .order_by("production_start", "token_id", "range_start", "pk")
    )


def certificates_transferred_wh_by_settlement(*, settlement_refs: Iterable[str]) -> dict[str, int]:
    """Wh of certificates moved seller → buyer per settlement run reference (one query)."""
    rows = (
        CertificateTransfer.objects.filter(settlement_ref__in=list(settlement_refs))
        .values("settlement_ref")
        .annotate(wh=Sum("transferred_wh"))
        .values_list("settlement_ref", "wh")
    )
    return {ref: int(wh or 0) for ref, wh in rows}


def certificate_chain_intent_ids(*, certificate_ids: Iterable[int]) -> list[int]:
    """The chain outbox intent ids recorded on these certificates, sorted, without repeats (one
    query; certificates without an intent are left out)."""
    refs = Certificate.objects.filter(pk__in=list(certificate_ids)).values_list(
        "chain_intent_ref", flat=True
    )
    return sorted({int(ref) for ref in refs if ref.isdigit()})


def claimed_certificate_chain_intent_ids(
    *, start: datetime, end: datetime, member_ids: Iterable[int] | None = None
) -> list[int]:
    """The chain outbox intent ids of the certificates claimed for hours in [start, end)
    (optionally of these owners), sorted, without repeats — distinct in SQL (one query)."""
    qs = Certificate.objects.filter(
        status=Certificate.Status.CLAIMED, production_start__gte=start, production_start__lt=end
    )
    if member_ids is not None:
        qs = qs.filter(owner_id__in=list(member_ids))
    refs = qs.exclude(chain_intent_ref="").values_list("chain_intent_ref", flat=True).distinct()
    return sorted({int(ref) for ref in refs.iterator() if ref.isdigit()})


# --- carbon ----------------------------------------------------------------------------------


def emission_factor_resolver(
    *, basis: str, start: datetime, end: datetime, zone: str | None = None
) -> Callable[[datetime], Decimal]:
    """A hour → g CO2e/kWh lookup for one zone and basis, checked to cover [start, end)."""
    zone = zone or conf.market_zone()
    factors = list(
        EmissionFactor.objects.filter(market_zone=zone, basis=basis, valid_from__lt=end.date())
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=start.date()))
        .order_by("valid_from")
    )

    def lookup(hour: datetime) -> Decimal:
        day: date = hour.date()
        for factor in reversed(factors):
            if factor.valid_from <= day and (factor.valid_to is None or day < factor.valid_to):
                return factor.g_co2e_per_kwh
        raise ApplicationError(
            f"No {basis.replace('_', ' ')} emission factor for {zone} on {day}. "
            "Add one (staff admin → Emission factors) before reporting this period.",
            {"zone": zone, "basis": basis, "day": str(day)},
        )

    return lookup


@dataclass
class MemberCarbon:
    member_id: int
    membership_number: str
    result: CarbonResult


def carbon_by_member(
    *, start: datetime, end: datetime, member_ids: Iterable[int] | None = None
) -> list[MemberCarbon]:
    """Scope 2 (location- and market-based) per member over [start, end): three queries."""
    ids = list(member_ids) if member_ids is not None else None
    consumption = energy.members_hourly_import(start, end, ids)
    claimed_qs = Certificate.objects.filter(
        status=Certificate.Status.CLAIMED, production_start__gte=start, production_start__lt=end
    )
    if ids is not None:
        claimed_qs = claimed_qs.filter(owner_id__in=ids)
    claimed: dict[int, list[ClaimedCertificate]] = defaultdict(list)
    for pk, owner_id, hour, r0, r1, ef in claimed_qs.values_list(
        "pk", "owner_id", "production_start", "range_start", "range_end", "emission_factor"
    ):
        claimed[owner_id].append(ClaimedCertificate(str(pk), hour, r1 - r0, ef))
    location = emission_factor_resolver(basis=EmissionFactor.Basis.LOCATION, start=start, end=end)
    residual = emission_factor_resolver(
        basis=EmissionFactor.Basis.RESIDUAL_MIX, start=start, end=end
    )
    members = sorted(set(consumption) | set(claimed))
    numbers = dict(Member.objects.filter(pk__in=members).values_list("pk", "membership_number"))
    return [
        MemberCarbon(
            m,
            numbers.get(m, str(m)),
            scope2(consumption.get(m, {}), claimed.get(m, []), location, residual),
        )
        for m in members
    ]


def carbon_by_member_iter(
    *,
    start: datetime,
    end: datetime,
    member_ids: Iterable[int] | None = None,
    claimed_only: bool = False,
    batch: int = 500,
) -> Iterator[MemberCarbon]:
    """The rows of :func:`carbon_by_member`, the same figures in the same (member id) order,
    streamed: consumption per member-hour and the claimed certificates are each read from a
    server-side cursor ordered by member and merged, and each member goes through the pure
    engine on its own, so memory holds about `batch` members' results, never members × hours.
    `claimed_only` restricts to members holding certificates claimed for hours of the period
    (the only ones with certificate uses)."""
    ids = list(member_ids) if member_ids is not None else None
    claimed_qs = Certificate.objects.filter(
        status=Certificate.Status.CLAIMED, production_start__gte=start, production_start__lt=end
    )
    if ids is not None:
        claimed_qs = claimed_qs.filter(owner_id__in=ids)
    if claimed_only:
        ids = sorted(set(claimed_qs.values_list("owner_id", flat=True).distinct()))
        if not ids:
            return
    location = emission_factor_resolver(basis=EmissionFactor.Basis.LOCATION, start=start, end=end)
    residual = emission_factor_resolver(
        basis=EmissionFactor.Basis.RESIDUAL_MIX, start=start, end=end
    )
    consumption = energy.members_hourly_import_iter(start, end, ids)
    certificates = (
        (owner_id, ClaimedCertificate(str(pk), hour, r1 - r0, ef))
        for pk, owner_id, hour, r0, r1, ef in claimed_qs.order_by("owner_id", "pk")
        .values_list(
            "pk", "owner_id", "production_start", "range_start", "range_end", "emission_factor"
        )
        .iterator(chunk_size=2000)
    )
    pending: list[tuple[int, CarbonResult]] = []

    def flush() -> Iterator[MemberCarbon]:
        numbers = dict(
            Member.objects.filter(pk__in=[m for m, _ in pending]).values_list(
                "pk", "membership_number"
            )
        )
        for m, result in pending:
            yield MemberCarbon(m, numbers.get(m, str(m)), result)
        pending.clear()

    next_use = next(certificates, None)
    next_hours = next(consumption, None)
    while next_use is not None or next_hours is not None:
        member = min(x[0] for x in (next_use, next_hours) if x is not None)
        hours: dict[datetime, int] = {}
        if next_hours is not None and next_hours[0] == member:
            hours = next_hours[1]
            next_hours = next(consumption, None)
        claimed: list[ClaimedCertificate] = []
        while next_use is not None and next_use[0] == member:
            claimed.append(next_use[1])
            next_use = next(certificates, None)
        pending.append((member, scope2(hours, claimed, location, residual)))
        if len(pending) >= batch:
            yield from flush()
    if pending:
        yield from flush()


def certificate_beneficiaries(*, member_id: int) -> list[str]:
    """The distinct beneficiaries named on the member's certificates (one query)."""
    return list(
        Certificate.objects.filter(owner_id=member_id)
        .exclude(beneficiary="")
        .values_list("beneficiary", flat=True)
        .distinct()
    )


def reward_tokens_by_member(*, start: datetime, end: datetime) -> dict[int, int]:
    """Reward tokens per member id for periods starting in [start, end) (members with any)."""
    rows = (
        Reward.objects.filter(period_start__gte=start, period_start__lt=end)
        .values("member_id")
        .annotate(tokens=Sum("tokens"))
    )
    return {row["member_id"]: int(row["tokens"]) for row in rows}


def member_reward_tokens(*, member: Member, start: datetime, end: datetime) -> int:
    """Reward tokens granted to the member for periods starting in [start, end)."""
    total = Reward.objects.filter(
        member=member, period_start__gte=start, period_start__lt=end
    ).aggregate(tokens=Sum("tokens"))["tokens"]
    return int(total or 0)


# --- shared plants ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SharedPlantCredit:
    asset: str
    mode: str  # SharedAsset.Mode
    month: date
    share_ppm: int
    produced_wh: int
    wh: int  # the shareholder's part of the settled production
    amount_cents: int  # revenue share (0 in generation-kWh mode: valued on the invoice)


def _credit(row: SharedAssetCredit) -> SharedPlantCredit:
    return SharedPlantCredit(
        asset=row.period.asset.name,
        mode=row.period.mode,
        month=row.period.month,
        share_ppm=row.share_ppm,
        produced_wh=row.period.produced_wh,
        wh=row.wh,
        amount_cents=row.amount_cents,
    )


def shared_plant_credits_by_member(
    *, month: date, member_ids: Iterable[int] | None = None
) -> dict[int, list[SharedPlantCredit]]:
    """Each shareholder's shared-plant credits of one month, by member id (one query)."""
    qs = SharedAssetCredit.objects.filter(period__month=month.replace(day=1)).select_related(
        "period__asset"
    )
    if member_ids is not None:
        qs = qs.filter(member_id__in=list(member_ids))
    out: dict[int, list[SharedPlantCredit]] = defaultdict(list)
    for row in qs.order_by("member_id", "period__asset__name"):
        out[row.member_id].append(_credit(row))
    return dict(out)


def member_shared_plant_credits(*, member: Member) -> list[SharedPlantCredit]:
    """The member's shared-plant credits, newest month first (portal)."""
    qs = SharedAssetCredit.objects.filter(member=member).select_related("period__asset")
    return [_credit(row) for row in qs.order_by("-period__month", "period__asset__name")]


def member_asset_shares(*, member: Member) -> list[tuple[str, str, Decimal]]:
    """(plant name, mode label, share in percent) of every plant the member holds a share in."""
    from apps.incentives.models import AssetShare

    return [
        (share.asset.name, share.asset.get_mode_display(), share.percent)
        for share in AssetShare.objects.filter(member=member).select_related("asset")
    ]


def redeemed_tokens_for_month(
    *, month: date, end: datetime, member_ids: list[int] | None = None
) -> dict[int, int]:
    """Tokens to credit on each member's invoice of `month`: redemptions burned before `end`
    not yet credited, and those already credited on that month's invoice (a re-run of a draft)."""
    qs = Redemption.objects.filter(
        Q(status=Redemption.Status.BURNED, burned_at__lt=end)
        | Q(status=Redemption.Status.CREDITED, credited_month=month)
    )
    if member_ids is not None:
        qs = qs.filter(member_id__in=member_ids)
    rows = qs.values("member_id").annotate(tokens=Sum("tokens"))
    return {row["member_id"]: int(row["tokens"]) for row in rows}


def member_redeemable_tokens(*, member: Member) -> int:
    """Reward tokens the member can redeem now: granted on chain, less those redeemed."""
    from apps.incentives.models import RewardAccount

    granted = (
        Reward.objects.filter(member=member)
        .exclude(chain_intent_ref="")
        .aggregate(t=Sum("tokens"))["t"]
    )
    account = RewardAccount.objects.filter(member=member).first()
    return int(granted or 0) - (account.redeemed_tokens if account else 0)


def member_redemptions(*, member: Member) -> QuerySet[Redemption]:
    return Redemption.objects.filter(member=member)
