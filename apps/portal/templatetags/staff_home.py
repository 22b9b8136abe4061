"""`{% staff_home as home %}`: the staff home's data for the admin index (staff and auditors)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from apps.accounts.policy import Capability, request_allows
from apps.portal.cockpit import StaffHome
from apps.portal.cockpit import staff_home as staff_home_build

register = template.Library()


@register.simple_tag(takes_context=True)
def staff_home(context: Any) -> StaffHome | None:
    request = context.get("request")
    if request is None or not request_allows(request, Capability.STAFF_READ):
        return None
    return staff_home_build(now=timezone.now())
