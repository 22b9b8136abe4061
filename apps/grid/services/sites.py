"""Sites: a member's connection points (a member may hold several)."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.grid.models import ConnectionPoint, Transformer


@transaction.atomic
def connection_point_create(
    *,
    member: Member,
    transformer: Transformer,
    code: str,
    street: str = "",
    postal_code: str = "",
    city: str = "",
    expected_annual_wh: int | None = None,
    pv_peak_w: int | None = None,
    contracted_power_w: int = 30_000,
    actor: Actor = None,
) -> ConnectionPoint:
    """Connect a new site of `member` under `transformer` (its code is the metering point id)."""
    code = code.strip()
    if not code:
        raise ApplicationError("A site needs a code (metering point id).", {"code": ["Required."]})
    if ConnectionPoint.objects.filter(code=code).exists():
        raise ApplicationError("This site code is taken.", {"code": [code]})
    site = ConnectionPoint.objects.create(
        member=member,
        transformer=transformer,
        code=code,
        bus_name=transformer.lv_bus,
        street=street,
        postal_code=postal_code,
        city=city,
        expected_annual_wh=expected_annual_wh,
        pv_peak_w=pv_peak_w,
        contracted_power_w=contracted_power_w,
    )
    audit_log_write(
        event=AuditEvent.CONNECTION_POINT_CREATED,
        actor=actor,
        target=site,
        details={"member": member.membership_number, "transformer": transformer.name},
    )
    return site
