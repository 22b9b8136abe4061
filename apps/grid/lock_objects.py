"""Row locks of the grid app (see apps/core/locks.py).

Planning locks the current dispatch plans before their commands; demand response locks an
event before its participations.
"""

from __future__ import annotations

from collections.abc import Iterable

from apps.accounts.models import Member
from apps.core.locks import lock_first, lock_rows
from apps.grid.models import DeviceCommand, DispatchPlan, DREvent, DRParticipation


def current_dispatch_plans_lock() -> list[DispatchPlan]:
    """Every plan not yet superseded."""
    return lock_rows(DispatchPlan.objects.exclude(status=DispatchPlan.Status.SUPERSEDED))


def plan_commands_lock_for_supersede(plan: DispatchPlan) -> list[DeviceCommand]:
    """The plan's commands that are not superseded yet."""
    return lock_rows(plan.commands.exclude(status=DeviceCommand.Status.SUPERSEDED))


def device_commands_lock(command_ids: Iterable[int]) -> list[DeviceCommand]:
    return lock_rows(DeviceCommand.objects.all(), command_ids)


def device_command_lock_for_ack(*, serial: str, command_id: str) -> DeviceCommand | None:
    """The command `command_id` sent to the device `serial` (the join also locks the device
    row), or None for an unknown or foreign command."""
    return lock_first(DeviceCommand.objects.filter(command_id=command_id, device__serial=serial))


def dr_events_lock(event_ids: Iterable[int]) -> list[DREvent]:
    return lock_rows(DREvent.objects.all(), event_ids)


def dr_participation_lock(*, event: DREvent, member: Member) -> DRParticipation | None:
    """The member's participation in the event, or None when they were not invited."""
    return lock_first(DRParticipation.objects.filter(event=event, connection_point__member=member))


def opted_in_participations_lock(event: DREvent) -> list[DRParticipation]:
    """The event's opted-in participations with their connection point and member (the join
    also locks those rows)."""
    return lock_rows(
        DRParticipation.objects.filter(event=event, opt=DRParticipation.Opt.OPT_IN).select_related(
            "connection_point__member"
        )
    )
