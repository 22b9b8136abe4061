"""Certificate lifecycle: issue → transfer → claim (retire, with beneficiary) or cancel.

Hourly granular certificates (EnergyTag Granular Certificate Scheme) per producing device, face
value in whole Wh, from validated generation. A token id is one device and one hour
(EnergyToken, ERC-1155: a partial transfer never splits history on chain); off chain a holding is a
Wh serial range [range_start, range_end) of that token, and a transfer or partial claim splits the
holding into children that point at their parent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, Q, Sum
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Member
from apps.accounts.services import member_chain_salt_ensure
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.incentives import chain_bridge, conf, energy
from apps.incentives.allocation import ShareTableError, allocate, validate_share_table
from apps.incentives.lock_objects import (
    active_certificates_lock_for_correction,
    active_certificates_lock_for_transfer,
    asset_shares_lock,
    certificate_lock,
)
from apps.incentives.models import AssetShare, Certificate, CertificateTransfer, SharedAsset
from apps.incentives.services.rewards import rewards_compute_for_settlement
from apps.market.models import SettlementRun
from apps.market.selectors import settled_trades
from apps.meters.lock_objects import meter_lock
from apps.meters.selectors import meter_occupant_at
from apps.notifications.models import Kind as NotificationKind
from apps.notifications.services import notify

HOUR = timedelta(hours=1)


def certificate_token_id(*, device_id: int, hour_start: datetime) -> int:
    """EnergyToken id for a device and hour (same formula as apps.chain.intents.token_id)."""
    hour = int(hour_start.astimezone(UTC).timestamp())
    if hour % 3600:
        raise ApplicationError("Certificates are issued per whole UTC hour.", {"hour": hour})
    return (device_id << 64) | hour


def certificate_record_hash(cert: Certificate) -> str:
    """keccak256 of the certificate's off-chain record (EnergyTag fields), put on chain at mint."""
    record = {
        "token_id": str(cert.token_id),
        "range": [cert.range_start, cert.range_end],
        "device": cert.device.serial,
        "energy_source": cert.energy_source,
        "production_start": cert.production_start.isoformat(),
        "production_end": cert.production_end.isoformat(),
        "country": cert.country,
        "issuing_body": cert.issuing_body,
        "market_zone": cert.market_zone,
        "support_received": cert.support_received,
        "emission_factor": str(cert.emission_factor),
    }
    return chain_bridge.hash32(json.dumps(record, sort_keys=True, separators=(",", ":")))


# --- issue ---------------------------------------------------------------------------------


@dataclass
class IssueSummary:
    hours: int = 0
    certificates: int = 0
    wh: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _owners_for(meter, wh: int, hour_start: datetime) -> list[tuple[Any, int, SharedAsset | None]]:
    """(owner member, Wh, shared asset) for each holder of this hour's production: a member's
    own meter's production is the occupant's of that hour (a move changes the owner)."""
    asset = SharedAsset.objects.filter(meter=meter).first()
    if asset is None:
        occupant = meter_occupant_at(meter_id=meter.pk, at=hour_start)
        if occupant is None:
            raise ApplicationError(
                f"Meter {meter.serial} produces but belongs to no member and no shared asset.",
                {"meter": meter.serial},
            )
        owner = meter.member if occupant == meter.member_id else Member.objects.get(pk=occupant)
        return [(owner, wh, None)]
    shares = asset_shares_lock(asset, with_members=True)
    if not shares:
        raise ApplicationError(
            f"Shared asset {asset.name} has no share table.", {"asset": asset.name}
        )
    weights = {s.member_id: s.share_ppm for s in shares}
    try:
        validate_share_table(weights)  # edited in the admin? refuse until it sums to 100 %
    except ShareTableError as exc:
        raise ApplicationError(f"{asset.name}: {exc}", {"asset": asset.name}) from exc
    result = allocate(wh, weights, {s.member_id: s.carry for s in shares})
    out: list[tuple[Any, int, SharedAsset | None]] = []
    for share in shares:
        share.carry = result.carry[share.member_id]
        out.append((share.member, result.amounts[share.member_id], asset))
    AssetShare.objects.bulk_update(shares, ["carry"])
    return out


@transaction.atomic
def certificates_issue_for_hour(
    *, meter, hour_start: datetime, actor: Actor = None
) -> list[Certificate]:
    """Issue certificates for one device-hour from its validated generation (idempotent).

    Issues what is not yet certified: the first run issues the hour's export Wh; a later upward
    correction issues the difference as a new serial range; a downward correction cancels the
    excess from holdings that are still active (and says so in the audit log).
    """

    meter = meter_lock(meter.pk)  # serialises issuers per device
    hour_start = energy.floor_hour(hour_start)
    hour = energy.meter_hourly_export(meter, hour_start, hour_start + HOUR).get(hour_start)
    validated_wh = hour.wh if hour else 0
    token = certificate_token_id(device_id=meter.pk, hour_start=hour_start)
    roots = Certificate.objects.filter(token_id=token, parent__isnull=True)
    issued = roots.aggregate(wh=Sum("range_end") - Sum("range_start"), end=Max("range_end"))
    issued_wh = issued["wh"] or 0
    corrected = _cancelled_for_correction(token)
    delta = validated_wh - (issued_wh - corrected)
    if delta < 0:
        _cancel_for_correction(token=token, wh=-delta, actor=actor)
        return []
    if delta == 0:
        return []
    next_serial = issued["end"] or 0
    source = energy.ENERGY_SOURCE_BY_ASSET.get(meter.asset_kind, "solar")
    created: list[Certificate] = []
    for owner, wh, asset in _owners_for(meter, delta, hour_start):
        if wh <= 0:
            continue
        cert = Certificate.objects.create(
            token_id=token,
            range_start=next_serial,
            range_end=next_serial + wh,
            owner=owner,
            device=meter,
            energy_source=source,
            production_start=hour_start,
            production_end=hour_start + HOUR,
            country=(meter.member.country if meter.member_id else "") or conf.default_country(),
            issuing_body=conf.issuing_body(),
            market_zone=conf.market_zone(),
            support_received=asset.support_received if asset else "none",
            emission_factor=conf.source_emission_factor(source),
            shared_asset=asset,
            source_intervals=hour.intervals if hour else [],
        )
        next_serial += wh
        address = chain_bridge.member_address(owner)
        if address:
            cert.chain_intent_ref = chain_bridge.submit(
                intent="certificate_mint",
                payload={
                    "to": address,
                    "token_id": token,
                    "amount_wh": wh,
                    "certificate_hash": certificate_record_hash(cert),
                },
                idempotency_key=f"certificate_mint:{cert.pk}",
            )
            cert.save(update_fields=["chain_intent_ref"])
        audit_log_write(
            event=AuditEvent.CERTIFICATE_ISSUED,
            actor=actor,
            target=cert,
            details={
                "token_id": str(token),
                "range": [cert.range_start, cert.range_end],
                "wh": wh,
                "owner": owner.membership_number,
                "device": meter.serial,
                "hour": hour_start.isoformat(),
                "validated_wh": validated_wh,
            },
        )
        created.append(cert)
    # Settlement may have asked for certificates of this hour before it was issued.
    for pending in CertificateTransfer.objects.filter(
        hour_start=hour_start,
        status=CertificateTransfer.Status.PENDING,
        seller_id__in={c.owner_id for c in created},
    ).order_by("pk"):
        _apply_transfer(pending, actor=actor)
    return created


def _cancelled_for_correction(token: int) -> int:
    rows = Certificate.objects.filter(
        token_id=token, status=Certificate.Status.CANCELLED, cancelled_reason="downward correction"
    ).values_list("range_start", "range_end")
    return sum(end - start for start, end in rows)


def _cancel_for_correction(*, token: int, wh: int, actor: Actor) -> None:
    left = wh
    for cert in active_certificates_lock_for_correction(token):
        if left <= 0:
            break
        take = min(left, cert.wh)
        part = _split_off(cert, take, owner=cert.owner, from_end=True, actor=actor)
        part.cancelled_reason = "downward correction"
        part.transition_to(
            Certificate.Status.CANCELLED,
            actor=actor,
            update_fields=["updated_at", "cancelled_reason"],
        )
        left -= take
    audit_log_write(
        event=AuditEvent.CERTIFICATE_TOKEN_CORRECTED,
        actor=actor,
        target_type="incentives.certificate_token",
        target_id=str(token),
        details={"excess_wh": wh, "cancelled_wh": wh - left, "uncancellable_wh": left},
    )


def _certified_wh(start: datetime, end: datetime) -> dict[tuple[int, datetime], int]:
    """Net certified Wh per (device, hour) in [start, end): issued roots minus the Wh cancelled
    for downward corrections (one query)."""
    rows = (
        Certificate.objects.filter(production_start__gte=start, production_start__lt=end)
        .filter(
            Q(parent__isnull=True)
            | Q(status=Certificate.Status.CANCELLED, cancelled_reason="downward correction")
        )
        .values_list(
            "device_id", "production_start", "range_start", "range_end", "parent_id", "status",
            "cancelled_reason",
        )
    )  # fmt: skip
    out: dict[tuple[int, datetime], int] = {}
    for device_id, hour, r0, r1, parent_id, status, reason in rows:
        wh = (r1 - r0) if parent_id is None else 0
        if status == Certificate.Status.CANCELLED and reason == "downward correction":
            wh -= r1 - r0
        out[(device_id, hour)] = out.get((device_id, hour), 0) + wh
    return out


def certificates_issue(
    *, start: datetime, end: datetime, actor: Actor = None, now: datetime | None = None
) -> IssueSummary:
    """Issue every complete, settled device-hour of every producing meter in [start, end).

    Each device-hour commits on its own, so its meter's row lock is held only while that hour is
    issued: ingest workers waiting for a meter are not stalled by a long run (the demo issues
    three days, thousands of certificates). An interrupted run is completed by the next one
    (device-hours already certified to the Wh are skipped); the owners' notifications (one per
    owner and run) commit at the end."""
    now = now or timezone.now()
    cutoff = energy.floor_hour(now) - timedelta(hours=conf.issue_lag_hours())
    end = min(end, cutoff)
    summary = IssueSummary()
    issued_to: dict[int, list[Certificate]] = {}
    certified = _certified_wh(start, end)
    for meter in energy.producing_meters():
        for hour in energy.meter_hourly_export(meter, start, end).values():
            if not hour.complete(meter.interval_seconds):
                summary.skipped.append(
                    {"meter": meter.serial, "hour": hour.hour_start.isoformat(), "why": "gaps"}
                )
                continue
            if certified.get((meter.pk, hour.hour_start), 0) == hour.wh:
                continue  # already certified to the Wh: nothing to do (the common re-run case)
            try:
                with transaction.atomic():
                    certs = certificates_issue_for_hour(
                        meter=meter, hour_start=hour.hour_start, actor=actor
                    )
            except ApplicationError as exc:
                summary.skipped.append(
                    {"meter": meter.serial, "hour": hour.hour_start.isoformat(), "why": exc.message}
                )
                continue
            summary.hours += 1
            summary.certificates += len(certs)
            summary.wh += sum(c.wh for c in certs)
            for cert in certs:
                issued_to.setdefault(cert.owner_id, []).append(cert)
    with transaction.atomic():
        _notify_owners(issued_to, actor=actor)
    return summary


def _notify_owners(issued_to: dict[int, list[Certificate]], *, actor: Actor) -> None:
    """One notification per owner and run (not per hour): how much was certified for them."""
    owners = Member.objects.in_bulk(list(issued_to))
    for owner_id, certs in sorted(issued_to.items()):
        wh = sum(c.wh for c in certs)
        first = min(c.production_start for c in certs)
        last = max(c.production_end for c in certs)
        notify(
            member=owners[owner_id],
            kind=NotificationKind.CERTIFICATE_ISSUED,
            subject=f"Certificates issued for {wh / 1000:.1f} kWh of renewable energy",
            body=(
                f"{len(certs)} certificate(s) for production from {first:%Y-%m-%d %H:%M} to "
                f"{last:%Y-%m-%d %H:%M} UTC."
            ),
            link=reverse("incentives:certificates"),
            actor=actor,
        )


# --- split / transfer / claim / cancel ------------------------------------------------------


def _child(cert: Certificate, start: int, end: int, owner, **extra: Any) -> Certificate:
    fields = {
        f.name: getattr(cert, f.name)
        for f in Certificate._meta.concrete_fields
        if f.name not in {"id", "range_start", "range_end", "owner", "parent", "status"}
        and f.name not in {"created_at", "updated_at", "chain_intent_ref", "trade_ref"}
        and f.name not in {"settlement_ref", "beneficiary", "claimed_at", "cancelled_reason"}
    }
    fields.update(extra)
    return Certificate.objects.create(
        range_start=start, range_end=end, owner=owner, parent=cert, **fields
    )


def _split_off(
    cert: Certificate,
    wh: int,
    *,
    owner,
    from_end: bool = False,
    actor: Actor = None,
    **extra: Any,
) -> Certificate:
    """Return an active holding of exactly `wh` of `cert` owned by `owner`; the rest stays with
    the current owner. The whole certificate is returned unchanged when nothing needs splitting."""
    if wh <= 0 or wh > cert.wh:
        raise ApplicationError(
            f"Cannot take {wh} Wh from a certificate of {cert.wh} Wh.", {"certificate": cert.pk}
        )
    if wh == cert.wh and owner == cert.owner and not extra:
        return cert
    cert.transition_to(Certificate.Status.TRANSFERRED, actor=actor, update_fields=["updated_at"])
    if from_end:
        rest = (cert.range_start, cert.range_end - wh)
        part = (cert.range_end - wh, cert.range_end)
    else:
        part = (cert.range_start, cert.range_start + wh)
        rest = (cert.range_start + wh, cert.range_end)
    taken = _child(cert, *part, owner, **extra)
    if rest[1] > rest[0]:
        _child(cert, *rest, cert.owner)
    return taken


def _locked(cert_id: int) -> Certificate:
    cert = certificate_lock(cert_id)
    if cert is None:
        raise ApplicationError("No such certificate.", {"certificate": cert_id})
    return cert


def _must_be_active(cert: Certificate, action: str) -> None:
    if cert.status != Certificate.Status.ACTIVE:
        raise ApplicationError(
            f"Certificate {cert.pk} is {cert.get_status_display().lower()}; only an active "
            f"certificate can be {action}.",
            {"certificate": cert.pk, "status": cert.status},
        )


@transaction.atomic
def certificate_claim(
    *, certificate_id: int, member, beneficiary: str, wh: int | None = None, actor: Actor = None
) -> Certificate:
    """Claim (retire) a member's certificate — all of it or `wh` of it — for a beneficiary."""
    cert = _locked(certificate_id)
    if cert.owner_id != member.pk:
        raise ApplicationError("This certificate is not yours.", {"certificate": cert.pk})
    _must_be_active(cert, "claimed")
    beneficiary = (beneficiary or "").strip()
    if not beneficiary:
        raise ApplicationError("A claim needs a beneficiary.", {"beneficiary": "required"})
    part = (
        cert if wh is None or wh == cert.wh else _split_off(cert, wh, owner=cert.owner, actor=actor)
    )
    part.beneficiary = beneficiary[:200]
    part.claimed_at = timezone.now()
    part.transition_to(
        Certificate.Status.CLAIMED,
        actor=actor,
        update_fields=["updated_at", "beneficiary", "claimed_at"],
    )
    address = chain_bridge.member_address(cert.owner)
    if address:
        part.chain_intent_ref = chain_bridge.submit(
            intent="certificate_claim",
            payload={
                "holder": address,
                "token_id": int(part.token_id),
                "amount_wh": part.wh,
                # Salted per member: names are guessable, the salt is not; erasure destroys it.
                "beneficiary_hash": chain_bridge.hash32(
                    f"{member_chain_salt_ensure(member_id=cert.owner_id)}:{part.pk}:"
                    f"{part.beneficiary}"
                ),
            },
            idempotency_key=f"certificate_claim:{part.pk}",
        )
        part.save(update_fields=["chain_intent_ref"])
    audit_log_write(
        event=AuditEvent.CERTIFICATE_CLAIMED,
        actor=actor,
        target=part,
        details={"wh": part.wh, "beneficiary": part.beneficiary, "token_id": str(part.token_id)},
    )
    return part


@transaction.atomic
def certificate_cancel(*, certificate_id: int, reason: str, actor: Actor = None) -> Certificate:
    """Cancel an active certificate (issuer correction; staff only)."""
    cert = _locked(certificate_id)
    _must_be_active(cert, "cancelled")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("A cancellation needs a reason.", {"reason": "required"})
    cert.transition_to(Certificate.Status.CANCELLED, actor=actor, update_fields=["updated_at"])
    cert.cancelled_reason = reason[:200]
    cert.save(update_fields=["cancelled_reason"])
    address = chain_bridge.member_address(cert.owner)
    if address:
        cert.chain_intent_ref = chain_bridge.submit(
            intent="certificate_cancel",
            payload={
                "holder": address,
                "token_id": int(cert.token_id),
                "amount_wh": cert.wh,
                "reason_hash": chain_bridge.hash32(f"{cert.pk}:{cert.cancelled_reason}"),
            },
            idempotency_key=f"certificate_cancel:{cert.pk}",
        )
        cert.save(update_fields=["chain_intent_ref"])
    audit_log_write(
        event=AuditEvent.CERTIFICATE_CANCELLED,
        actor=actor,
        target=cert,
        details={"wh": cert.wh, "reason": cert.cancelled_reason},
    )
    return cert


@transaction.atomic
def certificates_claim_for_consumption(
    *, member, start: datetime, end: datetime, beneficiary: str, actor: Actor = None
) -> list[Certificate]:
    """Claim the member's active certificates against their own consumption, hour by hour
    (EnergyTag hourly matching): never more than the hour's validated consumption."""
    consumption = energy.members_hourly_import(start, end, [member.pk]).get(member.pk, {})
    claimed: list[Certificate] = []
    for hour, used_wh in sorted(consumption.items()):
        already = sum(
            c.wh
            for c in Certificate.objects.filter(
                owner=member, production_start=hour, status=Certificate.Status.CLAIMED
            )
        )
        left = used_wh - already
        for cert in Certificate.objects.filter(
            owner=member, production_start=hour, status=Certificate.Status.ACTIVE
        ).order_by("emission_factor", "pk"):
            if left <= 0:
                break
            take = min(left, cert.wh)
            claimed.append(
                certificate_claim(
                    certificate_id=cert.pk,
                    member=member,
                    beneficiary=beneficiary,
                    wh=take,
                    actor=actor,
                )
            )
            left -= take
    return claimed


# --- P2P settlement -------------------------------------------------------------------------


def _transfer_part(
    cert: Certificate, wh: int, *, buyer, trade_ref: str, settlement_ref: str, actor: Actor
) -> Certificate:
    part = _split_off(
        cert,
        wh,
        owner=buyer,
        actor=actor,
        trade_ref=trade_ref,
        settlement_ref=settlement_ref,
    )
    seller_address = chain_bridge.member_address(cert.owner)
    buyer_address = chain_bridge.member_address(buyer)
    if seller_address and buyer_address:
        part.chain_intent_ref = chain_bridge.submit(
            intent="certificate_transfer",
            payload={
                "from_address": seller_address,
                "to": buyer_address,
                "token_id": int(part.token_id),
                "amount_wh": wh,
            },
            idempotency_key=f"certificate_transfer:{part.pk}",
        )
        part.save(update_fields=["chain_intent_ref"])
    audit_log_write(
        event=AuditEvent.CERTIFICATE_TRANSFERRED,
        actor=actor,
        target=part,
        details={
            "wh": wh,
            "from": cert.owner.membership_number,
            "to": buyer.membership_number,
            "trade": trade_ref,
            "parent": cert.pk,
        },
    )
    return part


def _apply_transfer(request: CertificateTransfer, *, actor: Actor = None) -> int:
    buyer = Member.objects.get(pk=request.buyer_id)
    left = request.wh - request.transferred_wh
    for cert in active_certificates_lock_for_transfer(
        seller_id=request.seller_id, hour_start=request.hour_start
    ):
        if left <= 0:
            break
        take = min(left, cert.wh)
        _transfer_part(
            cert,
            take,
            buyer=buyer,
            trade_ref=request.trade_ref,
            settlement_ref=request.settlement_ref,
            actor=actor,
        )
        left -= take
    moved = request.wh - request.transferred_wh - left
    request.transferred_wh += moved
    issued = Certificate.objects.filter(
        owner_id=request.seller_id, production_start=request.hour_start, parent__isnull=True
    ).exists()
    if left == 0 or issued:
        request.applied_at = timezone.now()
        request.transition_to(
            CertificateTransfer.Status.APPLIED,
            actor=actor,
            update_fields=["transferred_wh", "applied_at"],
        )
    else:
        request.save(update_fields=["transferred_wh"])
    return moved


@transaction.atomic
def certificates_transfer_for_settlement(
    *, settlement_run: SettlementRun, actor: Actor = None
) -> dict[str, int]:
    """Move certificates from sellers to buyers for every settled trade of a settlement run.

    Runs when market settlement settles a run (`apps.incentives.receivers`). For each trade the
    seller's certificates of the trade's hour are transferred to the buyer for the delivered Wh
    (lineage: certificate.trade_ref = trade id, and the certificate's source_intervals are the
    validated readings of the energy). If the hour is not yet certified the transfer waits
    (CertificateTransfer, pending) and is applied when it is. Idempotent: a trade is transferred
    once. Also grants the period's green rewards.
    """
    settlement_ref = str(settlement_run.pk)
    created = moved = 0
    for trade in settled_trades(settlement_run=settlement_run):
        if trade.delivered_wh <= 0:
            continue
        request, was_created = CertificateTransfer.objects.get_or_create(
            trade_ref=str(trade.id),
            defaults={
                "settlement_ref": settlement_ref,
                "seller_id": trade.seller_id,
                "buyer_id": trade.buyer_id,
                "hour_start": energy.floor_hour(trade.interval_start),
                "wh": trade.delivered_wh,
            },
        )
        if not was_created:
            continue
        created += 1
        moved += _apply_transfer(request, actor=actor)
    rewards = rewards_compute_for_settlement(settlement_run=settlement_run, actor=actor)
    return {"trades": created, "transferred_wh": moved, "rewards": len(rewards)}
