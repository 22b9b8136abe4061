"""OpenADR 2.0b VTN writes: provisioning VENs, their registration, the events queued for them,
their opt-in/opt-out and their telemetry reports. The protocol (openleadr's OpenADRServer) lives
in `apps.grid.openadr_vtn`, which calls these services."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.intervals import ensure_utc
from apps.core.types import Actor
from apps.grid.lock_objects import (
    battery_lock_for_soc,
    openadr_ven_lock,
    openadr_ven_lock_or_create,
)
from apps.grid.models import (
    ConnectionPoint,
    DREvent,
    FlexibleDevice,
    OpenADREventDelivery,
    OpenADRReport,
    OpenADRVen,
)
from apps.grid.services.dispatch import flexible_device_heard
from apps.grid.services.dr import dr_opt_set

SOC_MEASUREMENTS = {"stateofcharge", "soc", "x-soc"}


@transaction.atomic
def openadr_ven_provision(
    *,
    ven_name: str,
    connection_point: ConnectionPoint | None = None,
    fingerprint: str = "",
    actor: Actor = None,
) -> OpenADRVen:
    """Pre-provision a VEN (idempotent by name): it gets its venID now, outside OpenADR."""
    if not ven_name:
        raise ApplicationError("A VEN needs a name.")
    ven, created = openadr_ven_lock_or_create(
        ven_name=ven_name,
        defaults={
            "ven_id": f"ven-{uuid.uuid4().hex[:16]}",
            "connection_point": connection_point,
            "fingerprint": fingerprint,
        },
    )
    if created:
        audit_log_write(event=AuditEvent.OPENADR_VEN_PROVISIONED, actor=actor, target=ven)
    return ven


@transaction.atomic
def openadr_ven_register(
    *, ven_name: str, fingerprint: str | None = None, now: datetime | None = None
) -> OpenADRVen | None:
    """oadrCreatePartyRegistration: only a provisioned VEN (with the provisioned certificate
    fingerprint, when one is set and the connection is TLS) is registered; None otherwise."""
    ven = openadr_ven_lock(ven_name)
    if ven is None:
        return None
    if ven.fingerprint and fingerprint is not None and fingerprint != ven.fingerprint:
        return None
    now = ensure_utc(now or timezone.now())
    if not ven.registration_id:
        ven.registration_id = f"reg-{uuid.uuid4().hex[:16]}"
    ven.registered_at = ven.last_seen_at = now
    ven.save(update_fields=["registration_id", "registered_at", "last_seen_at"])
    audit_log_write(
        event=AuditEvent.OPENADR_VEN_REGISTERED, target=ven, details={"ven_id": ven.ven_id}
    )
    return ven


@transaction.atomic
def openadr_ven_seen(*, ven_id: str) -> None:
    OpenADRVen.objects.filter(ven_id=ven_id).update(last_seen_at=timezone.now())


@transaction.atomic
def openadr_event_queued(*, ven_id: str, event_pk: int, modification_number: int) -> None:
    ven = OpenADRVen.objects.get(ven_id=ven_id)
    OpenADREventDelivery.objects.get_or_create(
        ven=ven, event_id=event_pk, modification_number=modification_number
    )


@transaction.atomic
def openadr_event_opt(*, ven_id: str, event_id: str, opt: str) -> None:
    """The VEN's oadrCreatedEvent / oadrCreateOpt answer, as its site's member's answer."""
    ven = OpenADRVen.objects.select_related("connection_point__member").get(ven_id=ven_id)
    event = DREvent.objects.get(event_id=event_id)
    if ven.connection_point is None:
        raise ApplicationError(f"VEN {ven.ven_name} answers for no site.")
    dr_opt_set(member=ven.connection_point.member, event_pk=event.pk, opt=opt)


@transaction.atomic
def openadr_report_record(
    *, ven_id: str, resource_id: str, measurement: str, values: list[tuple[datetime, float]]
) -> int:
    """Store reported values. A report about a flexible device of the VEN's site (resource id =
    its serial) counts as hearing from it; a state-of-charge report (%) of a battery updates
    that battery's `soc_wh`, which the next dispatch plan starts from."""
    ven = OpenADRVen.objects.get(ven_id=ven_id)
    rows = [
        OpenADRReport(
            ven=ven,
            resource_id=resource_id[:64],
            measurement=measurement[:40],
            timestamp=ensure_utc(t),
            value=float(v),
        )
        for t, v in values
    ]
    OpenADRReport.objects.bulk_create(rows, ignore_conflicts=True)
    ven.last_seen_at = timezone.now()
    ven.save(update_fields=["last_seen_at"])
    reported = FlexibleDevice.objects.filter(
        serial=resource_id, connection_point_id=ven.connection_point_id
    ).first()
    if rows and reported is not None:
        flexible_device_heard(device_id=reported.pk)
    if rows and measurement.lower() in SOC_MEASUREMENTS and ven.connection_point_id:
        latest = max(rows, key=lambda r: r.timestamp)
        battery = battery_lock_for_soc(
            serial=resource_id, connection_point_id=ven.connection_point_id
        )
        if battery is not None:
            percent = min(max(latest.value, 0.0), 100.0)
            battery.soc_wh = round(battery.capacity_wh * percent / 100)
            battery.save(update_fields=["soc_wh"])
    return len(rows)
