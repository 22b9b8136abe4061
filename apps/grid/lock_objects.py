"""Row locks of the grid app (see apps/core/locks.py).

Planning locks the current dispatch plans before their commands; demand response locks an
event before its participations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apps.accounts.models import Member
from apps.core.locks import lock_first, lock_or_create, lock_row, lock_rows
from apps.grid.models import (
    ChargePoint,
    ChargingSession,
    ConnectionPoint,
    DeviceCommand,
    DispatchPlan,
    DREvent,
    DRParticipation,
    FlexibleDevice,
    OpenADRVen,
)


def connection_point_lock(connection_point_id: int) -> ConnectionPoint:
    """A site's row: serialises changes of its occupant (moves)."""
    return lock_row(ConnectionPoint.objects.all(), connection_point_id)


def current_dispatch_plans_lock() -> list[DispatchPlan]:
    """Every plan not yet superseded."""
    return lock_rows(DispatchPlan.objects.exclude(status=DispatchPlan.Status.SUPERSEDED))


def plan_commands_lock_for_supersede(plan: DispatchPlan) -> list[DeviceCommand]:
    """The plan's commands that are not superseded yet."""
    return lock_rows(plan.commands.exclude(status=DeviceCommand.Status.SUPERSEDED))


def device_commands_lock(command_ids: Iterable[int]) -> list[DeviceCommand]:
    return lock_rows(DeviceCommand.objects.all(), command_ids)


def device_commands_lock_for_numbering(command_ids: Iterable[int]) -> list[DeviceCommand]:
    """The commands with their device (only the command rows are locked)."""
    return lock_rows(DeviceCommand.objects.select_related("device"), command_ids, of=("self",))


def device_command_lock_for_ack(*, serial: str, command_id: str) -> DeviceCommand | None:
    """The command `command_id` sent to the device `serial`, with its device and the device's
    meter (the command and device rows are locked, not the meter), or None for an unknown or
    foreign command."""
    return lock_first(
        DeviceCommand.objects.select_related("device__meter").filter(
            command_id=command_id, device__serial=serial
        ),
        of=("self", "device"),
    )


def flexible_devices_lock(device_ids: Iterable[int]) -> list[FlexibleDevice]:
    return lock_rows(FlexibleDevice.objects.all(), device_ids)


def battery_lock_for_soc(*, serial: str, connection_point_id: int) -> FlexibleDevice | None:
    """The battery `serial` of the site, or None."""
    return lock_first(
        FlexibleDevice.objects.filter(
            serial=serial,
            kind=FlexibleDevice.Kind.BATTERY,
            connection_point_id=connection_point_id,
        )
    )


def charge_point_lock(ocpp_id: str) -> ChargePoint | None:
    return lock_first(ChargePoint.objects.filter(ocpp_id=ocpp_id))


def charge_point_lock_or_create(
    *, ocpp_id: str, defaults: dict[str, Any]
) -> tuple[ChargePoint, bool]:
    return lock_or_create(ChargePoint.objects.all(), defaults=defaults, ocpp_id=ocpp_id)


def charging_session_lock(*, ocpp_id: str, transaction_id: str) -> ChargingSession | None:
    """The charger's session with that transaction id, or None."""
    return lock_first(
        ChargingSession.objects.filter(charge_point__ocpp_id=ocpp_id, transaction_id=transaction_id)
    )


def openadr_ven_lock(ven_name: str) -> OpenADRVen | None:
    return lock_first(OpenADRVen.objects.filter(ven_name=ven_name))


def openadr_ven_lock_or_create(
    *, ven_name: str, defaults: dict[str, Any]
) -> tuple[OpenADRVen, bool]:
    return lock_or_create(OpenADRVen.objects.all(), defaults=defaults, ven_name=ven_name)


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
