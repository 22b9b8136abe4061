"""Erasure of personal data the grid app holds: a member's site coordinates."""

from __future__ import annotations

from django.db import transaction

from apps.grid.models import ConnectionPoint


@transaction.atomic
def connection_points_location_erase(*, member_id: int) -> int:
    """Clear the coordinates and postal addresses of the member's connection points (they
    locate a home). Returns the number of sites; the sites themselves stay (topology,
    settlement)."""
    return ConnectionPoint.objects.filter(member_id=member_id).update(
        latitude=None, longitude=None, street="", postal_code="", city=""
    )
