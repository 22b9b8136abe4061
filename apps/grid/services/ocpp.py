"""OCPP central system writes: charge point registration, boot, presence, charging sessions and
the chargers' own meter values. The protocol itself (WebSocket, OCPP 1.6-J / 2.0.1 messages)
lives in `apps.grid.ocpp_central`, which parses each message and calls these services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from apps.compliance.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.intervals import ensure_utc
from apps.grid.models import (
    ChargePoint,
    ChargePointMeterValue,
    ChargingSession,
    ChargingToken,
    FlexibleDevice,
)
from apps.grid.selectors import charging_token_active
from apps.grid.services.dispatch import flexible_device_heard

PROTOCOLS = ("ocpp1.6", "ocpp2.0.1")


@dataclass(frozen=True)
class MeterSample:
    """One sampled instant of a charger's meter (integer Wh / W, UTC)."""

    timestamp: datetime
    energy_wh: int | None = None
    power_w: int | None = None
    soc_percent: int | None = None


@transaction.atomic
def charge_point_register(
    *, ocpp_id: str, password: str, device: FlexibleDevice | None = None, actor: Any = None
) -> ChargePoint:
    """Register a charger (or set a new password); only the password's hash is kept."""
    if not ocpp_id or "/" in ocpp_id:
        raise ApplicationError("A charge point id is required and may not contain '/'.")
    if len(password) < 16:
        raise ApplicationError("A charge point password needs at least 16 characters.")
    if device is not None and device.kind != FlexibleDevice.Kind.EV:
        raise ApplicationError("Only an EV charger device can be a charge point.")
    cp, created = ChargePoint.objects.select_for_update().get_or_create(
        ocpp_id=ocpp_id, defaults={"password_hash": make_password(password), "device": device}
    )
    if not created:
        cp.password_hash = make_password(password)
        if device is not None:
            cp.device = device
        cp.save(update_fields=["password_hash", "device"])
    audit_log_write(
        event="charge_point.registered" if created else "charge_point.password_set",
        actor=actor,
        target=cp,
        details={"ocpp_id": ocpp_id},
    )
    return cp


@transaction.atomic
def charging_token_issue(*, member: Any, token: str, actor: Any = None) -> ChargingToken:
    if ChargingToken.objects.filter(token=token).exclude(member=member).exists():
        raise ApplicationError("This token belongs to another member.")
    obj, _ = ChargingToken.objects.update_or_create(
        token=token, defaults={"member": member, "active": True}
    )
    audit_log_write(event="charging_token.issued", actor=actor, target=obj)
    return obj


def _locked(ocpp_id: str) -> ChargePoint:
    cp = ChargePoint.objects.select_for_update().filter(ocpp_id=ocpp_id).first()
    if cp is None:
        raise ApplicationError(f"Unknown charge point {ocpp_id}.")
    return cp


@transaction.atomic
def charge_point_boot(
    *, ocpp_id: str, protocol: str, vendor: str = "", model: str = "", now: datetime | None = None
) -> ChargePoint:
    """A registered charger booted (BootNotification): online, with its protocol."""
    if protocol not in PROTOCOLS:
        raise ApplicationError(f"Unsupported protocol {protocol!r}.")
    now = ensure_utc(now or timezone.now())
    cp = _locked(ocpp_id)
    cp.protocol = protocol
    cp.vendor, cp.model = vendor[:50], model[:50]
    cp.status = ChargePoint.Status.ONLINE
    cp.last_boot_at = cp.last_seen_at = now
    cp.save(update_fields=["protocol", "vendor", "model", "status", "last_boot_at", "last_seen_at"])
    audit_log_write(
        event="charge_point.booted", target=cp, details={"protocol": protocol, "vendor": vendor}
    )
    return cp


@transaction.atomic
def charge_point_seen(
    *, ocpp_id: str, connector_status: str | None = None, now: datetime | None = None
) -> ChargePoint:
    """Heartbeat or StatusNotification: the charger is online (and its connector's status)."""
    cp = _locked(ocpp_id)
    cp.last_seen_at = ensure_utc(now or timezone.now())
    cp.status = ChargePoint.Status.ONLINE
    fields = ["last_seen_at", "status"]
    if connector_status is not None:
        cp.connector_status = connector_status[:24]
        fields.append("connector_status")
    cp.save(update_fields=fields)
    return cp


@transaction.atomic
def charge_point_disconnect(*, ocpp_id: str) -> None:
    cp = ChargePoint.objects.select_for_update().filter(ocpp_id=ocpp_id).first()
    if cp is not None and cp.status == ChargePoint.Status.ONLINE:
        cp.status = ChargePoint.Status.OFFLINE
        cp.save(update_fields=["status"])


@transaction.atomic
def charging_session_start(
    *,
    ocpp_id: str,
    transaction_id: str | None,
    token: str | None,
    connector_id: int = 1,
    meter_start_wh: int = 0,
    started_at: datetime | None = None,
) -> ChargingSession:
    """Start (or find again, on a repeated message) the session; the token names the member.
    Without a `transaction_id` (OCPP 1.6, where the central system assigns it) the session's
    own primary key becomes its transaction id, unique across restarts."""
    cp = _locked(ocpp_id)
    if transaction_id is not None:
        existing = ChargingSession.objects.filter(charge_point=cp, transaction_id=transaction_id)
        if existing.exists():
            return existing.get()
    tok = charging_token_active(token=token) if token else None
    session = ChargingSession.objects.create(
        charge_point=cp,
        transaction_id=transaction_id or uuid.uuid4().hex,  # replaced by the pk below
        token=tok,
        member=tok.member if tok else None,
        connector_id=connector_id,
        meter_start_wh=meter_start_wh,
        started_at=ensure_utc(started_at or timezone.now()),
    )
    if transaction_id is None:
        session.transaction_id = str(session.pk)
        session.save(update_fields=["transaction_id"])
    audit_log_write(
        event="charging_session.started",
        target=session,
        details={
            "ocpp_id": ocpp_id,
            "transaction_id": session.transaction_id,
            "authorised": bool(tok),
        },
    )
    return session


@transaction.atomic
def charging_session_stop(
    *,
    ocpp_id: str,
    transaction_id: str,
    meter_stop_wh: int | None = None,
    stopped_at: datetime | None = None,
    reason: str = "",
) -> ChargingSession | None:
    session = (
        ChargingSession.objects.select_for_update()
        .filter(charge_point__ocpp_id=ocpp_id, transaction_id=transaction_id)
        .first()
    )
    if session is None or session.stopped_at is not None:
        return session  # unknown or already stopped: idempotent
    session.stopped_at = ensure_utc(stopped_at or timezone.now())
    session.meter_stop_wh = meter_stop_wh
    session.stop_reason = reason[:40]
    session.save(update_fields=["stopped_at", "meter_stop_wh", "stop_reason"])
    audit_log_write(
        event="charging_session.stopped",
        target=session,
        details={"meter_stop_wh": meter_stop_wh, "reason": reason},
    )
    return session


@transaction.atomic
def charge_point_meter_values_record(
    *, ocpp_id: str, samples: list[MeterSample], transaction_id: str | None = None
) -> int:
    """Store the charger's sampled values (flagged `source=ocpp`); a repeated timestamp is
    ignored. Returns the number of samples received."""
    cp = _locked(ocpp_id)
    session = None
    if transaction_id is not None:
        session = ChargingSession.objects.filter(
            charge_point=cp, transaction_id=transaction_id
        ).first()
    rows = [
        ChargePointMeterValue(
            charge_point=cp,
            session=session,
            timestamp=ensure_utc(s.timestamp),
            energy_wh=s.energy_wh,
            power_w=s.power_w,
            soc_percent=s.soc_percent,
        )
        for s in samples
    ]
    ChargePointMeterValue.objects.bulk_create(rows, ignore_conflicts=True)
    cp.last_seen_at = timezone.now()
    cp.save(update_fields=["last_seen_at"])
    if rows and cp.device_id is not None:
        flexible_device_heard(device_id=cp.device_id)
    return len(rows)
