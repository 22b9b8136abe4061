"""Sites: a member's connection points (a member may hold several) and who occupies one. The move
itself (final readings, meters, supply contracts, audit) is `apps.billing.services.site_move`,
which calls `connection_point_occupant_set`."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.grid.lock_objects import connection_point_lock
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


@transaction.atomic
def connection_point_occupant_set(*, connection_point_id: int, member) -> ConnectionPoint:
    """Make `member` the site's occupant (`ConnectionPoint.member`). Where the model allows a
    member one site only (a one-to-one field), a member who already holds a site is refused."""
    point = connection_point_lock(connection_point_id)
    if point.member_id == member.pk:
        return point
    one_site_only = ConnectionPoint._meta.get_field("member").one_to_one
    if one_site_only and ConnectionPoint.objects.filter(member=member).exists():
        raise ApplicationError(
            f"Member {member.membership_number} already holds a site; a member holds one site.",
            {"member": member.pk},
        )
    point.member = member
    point.save(update_fields=["member"])
    return point
