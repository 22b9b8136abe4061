"""OCPP central system writes: charge point registration, boot, presence, charging sessions and
the chargers' own meter values. The protocol itself (WebSocket, OCPP 1.6-J / 2.0.1 messages)
lives in `apps.grid.ocpp_central`, which parses each message and calls these services."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.intervals import ensure_utc
from apps.core.types import Actor
from apps.grid.lock_objects import (
    charge_point_lock,
    charge_point_lock_or_create,
    charging_session_lock,
)
from apps.grid.models import (
    ChargePoint,
    ChargePointMeterValue,
    ChargingSession,
    ChargingToken,
    FlexibleDevice,
)
from apps.grid.selectors import charging_token_active
from apps.grid.services.dispatch import dispatch_plan_create, flexible_device_heard

PROTOCOLS = ("ocpp1.6", "ocpp2.0.1")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeterSample:
    """One sampled instant of a charger's meter (integer Wh / W, UTC)."""

    timestamp: datetime
    energy_wh: int | None = None
    power_w: int | None = None
    soc_percent: int | None = None


@transaction.atomic
def charge_point_register(
    *, ocpp_id: str, password: str, device: FlexibleDevice | None = None, actor: Actor = None
) -> ChargePoint:
    """Register a charger (or set a new password); only the password's hash is kept."""
    if not ocpp_id or "/" in ocpp_id:
        raise ApplicationError("A charge point id is required and may not contain '/'.")
    if len(password) < 16:
        raise ApplicationError("A charge point password needs at least 16 characters.")
    if device is not None and device.kind != FlexibleDevice.Kind.EV:
        raise ApplicationError("Only an EV charger device can be a charge point.")
    cp, created = charge_point_lock_or_create(
        ocpp_id=ocpp_id, defaults={"password_hash": make_password(password), "device": device}
    )
    if not created:
        cp.password_hash = make_password(password)
        if device is not None:
            cp.device = device
        cp.save(update_fields=["password_hash", "device"])
    audit_log_write(
        event=(
            AuditEvent.CHARGE_POINT_REGISTERED if created else AuditEvent.CHARGE_POINT_PASSWORD_SET
        ),
        actor=actor,
        target=cp,
        details={"ocpp_id": ocpp_id},
    )
    return cp


@transaction.atomic
def charging_token_issue(*, member: Member, token: str, actor: Actor = None) -> ChargingToken:
    if ChargingToken.objects.filter(token=token).exclude(member=member).exists():
        raise ApplicationError("This token belongs to another member.")
    obj, _ = ChargingToken.objects.update_or_create(
        token=token, defaults={"member": member, "active": True}
    )
    audit_log_write(event=AuditEvent.CHARGING_TOKEN_ISSUED, actor=actor, target=obj)
    return obj


def _locked(ocpp_id: str) -> ChargePoint:
    cp = charge_point_lock(ocpp_id)
    if cp is None:
        raise ApplicationError(f"Unknown charge point {ocpp_id}.")
    return cp


def _online(cp: ChargePoint, fields: list[str]) -> None:
    """Save `fields`, and mark the charger online (presence is not audited: too frequent)."""
    if cp.status == ChargePoint.Status.ONLINE:
        cp.save(update_fields=fields)
    else:
        cp.transition_to(ChargePoint.Status.ONLINE, actor=None, update_fields=fields)


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
    cp.last_boot_at = cp.last_seen_at = now
    fields = ["protocol", "vendor", "model", "last_boot_at", "last_seen_at"]
    _online(cp, fields)
    audit_log_write(
        event=AuditEvent.CHARGE_POINT_BOOTED,
        target=cp,
        details={"protocol": protocol, "vendor": vendor},
    )
    return cp


@transaction.atomic
def charge_point_seen(
    *, ocpp_id: str, connector_status: str | None = None, now: datetime | None = None
) -> ChargePoint:
    """Heartbeat or StatusNotification: the charger is online (and its connector's status)."""
    cp = _locked(ocpp_id)
    cp.last_seen_at = ensure_utc(now or timezone.now())
    fields = ["last_seen_at"]
    if connector_status is not None:
        cp.connector_status = connector_status[:24]
        fields.append("connector_status")
    _online(cp, fields)
    return cp


@transaction.atomic
def charge_point_disconnect(*, ocpp_id: str) -> None:
    cp = charge_point_lock(ocpp_id)
    if cp is not None and cp.status == ChargePoint.Status.ONLINE:
        cp.transition_to(ChargePoint.Status.OFFLINE, actor=None)


def charging_session_replan() -> None:
    """A session started: plan again so that its charger gets set points (the plan's inputs
    include the running sessions, so this re-plans only when something changed)."""
    try:
        dispatch_plan_create()
    except ApplicationError as exc:  # e.g. no transformer yet: the charger gets no profile
        logger.warning("no re-plan for the new session: %s", exc)


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
        event=AuditEvent.CHARGING_SESSION_STARTED,
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
    session = charging_session_lock(ocpp_id=ocpp_id, transaction_id=transaction_id)
    if session is None or session.stopped_at is not None:
        return session  # unknown or already stopped: idempotent
    session.stopped_at = ensure_utc(stopped_at or timezone.now())
    session.meter_stop_wh = meter_stop_wh
    session.stop_reason = reason[:40]
    session.save(update_fields=["stopped_at", "meter_stop_wh", "stop_reason"])
    audit_log_write(
        event=AuditEvent.CHARGING_SESSION_STOPPED,
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
