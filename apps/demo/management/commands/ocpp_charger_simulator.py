"""`manage.py ocpp_charger_simulator`: the demo's EV chargers as OCPP 1.6-J clients (the `ocpp`
library's own ChargePoint) talking to `manage.py ocpp_server`.

Every registered demo charge point with an EV device (not the spare one) connects with its demo
credentials, boots, reports its connector status, sends heartbeats and runs charging sessions
with the RFID token of its site's member: Authorize, StartTransaction, MeterValues, then
StopTransaction. Charging power follows the last SetChargingProfile the central system sent (the
dispatch plan), capped by the charger's maximum. Time runs `--speed` times faster for the energy
counted. Chargers registered later are picked up every 30 s; lost connections are retried.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import signal
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result, enums
from websockets.asyncio.client import connect

from apps.demo.keys import DEMO_SPARE_CHARGE_POINT, demo_charger_password, demo_charging_token
from apps.grid import conf
from apps.grid.selectors import charge_points_overview

logger = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class DemoCharger(ChargePoint):
    def __init__(self, ident, connection, *, max_w: int):
        super().__init__(ident, connection)
        self.max_w = max_w
        self.limit_w = max_w

    @on(enums.Action.set_charging_profile)
    async def on_profile(self, connector_id, cs_charging_profiles, **kwargs):
        periods = cs_charging_profiles["charging_schedule"]["charging_schedule_period"]
        if periods:
            self.limit_w = int(min(self.max_w, periods[0]["limit"]))
        return call_result.SetChargingProfile(status=enums.ChargingProfileStatus.accepted)


def _chargers() -> list[dict]:
    return [
        {
            "ocpp_id": cp.ocpp_id,
            "max_w": cp.device.max_charge_w,
            "token": demo_charging_token(cp.device.connection_point.member.membership_number),
        }
        for cp in charge_points_overview().exclude(device=None)
        if cp.ocpp_id != DEMO_SPARE_CHARGE_POINT
    ]


class Command(BaseCommand):
    help = "Drive the demo EV chargers through charging sessions over OCPP 1.6-J."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=None, help="default: OCPP_PORT")
        parser.add_argument("--speed", type=float, default=60.0, help="simulated s per real s")
        parser.add_argument(
            "--sample-seconds", type=float, default=15.0, help="real s between values"
        )
        parser.add_argument("--samples", type=int, default=12, help="meter values per session")

    def handle(self, *args, **options):
        port = options["port"] if options["port"] is not None else conf.get("OCPP_PORT")
        self.url = f"ws://{options['host']}:{port}/ocpp"
        self.opts = options
        asyncio.run(self._main())

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        tasks: dict[str, asyncio.Task] = {}
        while not stop.done():
            for charger in await sync_to_async(_chargers)():
                if charger["ocpp_id"] not in tasks:
                    tasks[charger["ocpp_id"]] = asyncio.create_task(
                        drive_charger(
                            self.url,
                            charger,
                            sample_seconds=self.opts["sample_seconds"],
                            samples=self.opts["samples"],
                            speed=self.opts["speed"],
                        )
                    )
                    self.stdout.write(f"charger {charger['ocpp_id']} started")
            await asyncio.wait([stop], timeout=30)
        await asyncio.gather(*(cancel_and_wait(task) for task in tasks.values()))


async def cancel_and_wait(task: asyncio.Task, *, retry_s: float = 0.5, tries: int = 40) -> None:
    """Cancel a charger's task and wait until it has ended.

    The ocpp library awaits every answer through `asyncio.wait_for`, which on Python 3.11 can
    swallow a cancellation that arrives just as the answer does (CPython gh-86296): the charger
    then runs on. So the cancellation is repeated until the task is done.
    """
    for _ in range(tries):
        task.cancel()
        await asyncio.wait({task}, timeout=retry_s)
        if task.done():
            return
    raise RuntimeError(f"charger task did not stop after {tries} cancellations")


async def drive_charger(
    url: str, charger: dict, *, sample_seconds: float, samples: int, speed: float
) -> None:
    """Run one demo charger forever: connect (retrying), boot, sessions."""
    ident = charger["ocpp_id"]
    auth = base64.b64encode(f"{ident}:{demo_charger_password(ident)}".encode()).decode()
    meter = {"wh": random.randint(1_000_000, 9_000_000)}  # the register survives reconnects
    while True:
        try:
            async with connect(
                f"{url}/{ident}",
                subprotocols=["ocpp1.6"],
                additional_headers={"Authorization": f"Basic {auth}"},
            ) as ws:
                cp = DemoCharger(ident, ws, max_w=charger["max_w"])
                runner = asyncio.create_task(cp.start())
                try:
                    await _sessions(cp, charger["token"], meter, sample_seconds, samples, speed)
                finally:
                    runner.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - server down or restarting: retry
            logger.info("charger %s: %s; retrying in 10 s", ident, exc)
            await asyncio.sleep(10)


async def _sessions(
    cp: DemoCharger, token: str, meter: dict, sample_s: float, samples: int, speed: float
) -> None:
    await cp.call(call.BootNotification(charge_point_model="DemoBox", charge_point_vendor="ES"))
    while True:
        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
        )
        await asyncio.sleep(random.uniform(1, 4) * sample_s)
        await cp.call(call.Heartbeat())
        auth = await cp.call(call.Authorize(id_tag=token))
        if auth.id_tag_info["status"] != enums.AuthorizationStatus.accepted:
            await asyncio.sleep(30 * sample_s)
            continue
        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Charging")
        )
        started = await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag=token, meter_start=meter["wh"], timestamp=_now()
            )
        )
        tx = started.transaction_id
        for _ in range(samples):
            await asyncio.sleep(sample_s)
            power = max(0, cp.limit_w)
            meter["wh"] += round(power * sample_s * speed / 3600)
            await cp.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=tx,
                    meter_value=[
                        {
                            "timestamp": _now(),
                            "sampledValue": [
                                {
                                    "value": str(meter["wh"]),
                                    "measurand": "Energy.Active.Import.Register",
                                    "unit": "Wh",
                                },
                                {
                                    "value": str(power),
                                    "measurand": "Power.Active.Import",
                                    "unit": "W",
                                },
                            ],
                        }
                    ],
                )
            )
        await cp.call(
            call.StopTransaction(meter_stop=meter["wh"], timestamp=_now(), transaction_id=tx)
        )
