"""The demo charger simulator (the `ocpp` library's 1.6 client) against the central system:
sessions with the member's token, meter values stored, power following the dispatch plan."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from apps.core.intervals import floor_interval
from apps.demo.keys import demo_charge_point_id, demo_charger_password, demo_charging_token
from apps.demo.management.commands.ocpp_charger_simulator import cancel_and_wait, drive_charger
from apps.grid.models import (
    ChargePoint,
    ChargePointMeterValue,
    ChargingSession,
    DeviceCommand,
    DispatchPlan,
)
from apps.grid.ocpp_central import central_system
from apps.grid.services.ocpp import charge_point_register, charging_token_issue
from apps.grid.tests.factories import EVChargerFactory
from tests.fixtures.ports import free_port


async def _drive(port: int, charger: dict) -> None:
    async with central_system("127.0.0.1", port):
        task = asyncio.create_task(
            drive_charger(
                f"ws://127.0.0.1:{port}/ocpp",
                charger,
                sample_seconds=0.05,
                samples=3,
                speed=3600,
            )
        )
        await asyncio.sleep(2.5)
        await cancel_and_wait(task)
        await asyncio.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_simulated_charger_runs_sessions_at_the_planned_power():
    # the plan may give the charger at most 7.4 kW; the hardware could do 11 kW
    device = EVChargerFactory(max_charge_w=7_400)
    member = device.connection_point.member
    ident = demo_charge_point_id(device.serial)
    charge_point_register(ocpp_id=ident, password=demo_charger_password(ident), device=device)
    charging_token_issue(member=member, token=demo_charging_token(member.membership_number))
    plan = DispatchPlan.objects.create(
        start=floor_interval(timezone.now()),
        intervals=96,
        status=DispatchPlan.Status.OPTIMAL,
        solver_status="optimal",
        cost=Decimal("1"),
        unmanaged_cost=Decimal("1"),
        inputs_fingerprint="x",
    )
    DeviceCommand.objects.create(plan=plan, device=device, setpoints_w=[3_700] * 96)
    charger = {
        "ocpp_id": ident,
        "max_w": 11_000,
        "token": demo_charging_token(member.membership_number),
    }
    async_to_sync(_drive)(free_port(), charger)

    cp = ChargePoint.objects.get(ocpp_id=ident)
    assert cp.protocol == "ocpp1.6" and cp.vendor == "ES"
    sessions = list(ChargingSession.objects.filter(charge_point=cp).order_by("started_at"))
    assert sessions and all(s.member == member for s in sessions)
    finished = [s for s in sessions if s.stopped_at]
    assert finished, "at least one whole session in 2.5 s"
    first = finished[0]
    # The charger follows the plan, not its 11 kW hardware maximum, once the profile of the
    # re-plan made at session start has reached it: at speed 3600 the first 3-minute sample
    # (0.05 s) may pass before that, at the charger's default. 3 samples = 3 × 180 s, and the
    # session's energy is what those samples delivered.
    planned = {
        w for command in DeviceCommand.objects.filter(device=device)
        for w in command.setpoints_w
    }  # fmt: skip
    powers = list(
        ChargePointMeterValue.objects.filter(session=first)
        .order_by("timestamp")
        .values_list("power_w", flat=True)
    )
    assert len(powers) == 3, powers
    assert set(powers[1:]) <= planned and max(powers[1:]) <= 7_400, (powers, planned)
    assert first.meter_stop_wh - first.meter_start_wh == sum(round(w * 180 / 3600) for w in powers)


def test_a_charger_that_swallows_a_cancellation_is_still_stopped():
    # What Python 3.11's asyncio.wait_for does when the answer and the cancellation meet:
    # the first cancellation is lost and the charger runs on.
    lost = []

    async def charger() -> None:
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost.append(True)

    async def main() -> bool:
        task = asyncio.create_task(charger())
        await asyncio.sleep(0.05)
        await cancel_and_wait(task, retry_s=0.05)
        return task.cancelled()

    assert async_to_sync(main)() and lost == [True]
