"""Sites (connection points): who occupies one. The move itself (final readings, meters, supply
contracts, audit) is `apps.billing.services.site_move`, which calls this."""

from __future__ import annotations

from django.db import transaction

from apps.core.exceptions import ApplicationError
from apps.grid.lock_objects import connection_point_lock
from apps.grid.models import ConnectionPoint


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
