"""`manage.py openadr_ven_simulator`: the demo sites' VENs as openleadr clients talking to
`manage.py openadr_vtn`.

Every provisioned demo VEN except the spare one registers, answers each DR event (optIn, except
every fourth site, which opts out) and reports, per flexible device of its site, real power (W)
and — for batteries — state of charge (%), which the VTN stores and hands to dispatch. Values are
simulated: batteries discharge during an active event and recharge slowly otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import signal
from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand
from openleadr import OpenADRClient

from apps.demo.keys import DEMO_SPARE_VEN
from apps.grid import conf
from apps.grid.openadr_vtn import PATH_PREFIX
from apps.grid.selectors import flexible_devices_by_site, openadr_vens_overview

logger = logging.getLogger(__name__)


def _vens() -> list[dict]:
    devices = flexible_devices_by_site()
    return [
        {
            "ven_name": ven.ven_name,
            "devices": [
                {"serial": d.serial, "kind": d.kind, "max_w": d.max_charge_w}
                for d in devices.get(ven.connection_point_id, [])
            ],
        }
        for ven in openadr_vens_overview()
        if ven.ven_name != DEMO_SPARE_VEN and ven.connection_point_id
    ]


class SimulatedSite:
    """The VEN of one site: its opt answer and its devices' simulated telemetry."""

    def __init__(self, spec: dict):
        self.spec = spec
        digest = hashlib.sha256(spec["ven_name"].encode()).digest()
        self.opt = "optOut" if digest[0] % 4 == 3 else "optIn"
        self.soc = {d["serial"]: random.uniform(30, 80) for d in spec["devices"]}
        self.event_until: datetime | None = None

    async def on_event(self, event: dict) -> str:
        signal = event["event_signals"][0]
        intervals = signal["intervals"]
        if intervals and self.opt == "optIn":
            last = intervals[-1]
            self.event_until = last["dtstart"] + last["duration"]
        return self.opt

    def _active(self) -> bool:
        return self.event_until is not None and datetime.now(UTC) < self.event_until

    def power(self, device: dict):
        def read() -> float:
            if device["kind"] == "battery":
                return -0.8 * device["max_w"] if self._active() else 0.2 * device["max_w"]
            return 0.0 if self._active() else float(device["max_w"])

        return read

    def state_of_charge(self, serial: str):
        def read() -> float:
            step = -2.0 if self._active() else 0.5
            self.soc[serial] = min(95.0, max(10.0, self.soc[serial] + step))
            return round(self.soc[serial], 1)

        return read

    def client(self, vtn_url: str, sampling: timedelta) -> OpenADRClient:
        client = OpenADRClient(
            ven_name=self.spec["ven_name"], vtn_url=vtn_url, show_fingerprint=False
        )
        client.add_handler("on_event", self.on_event)
        for device in self.spec["devices"]:
            client.add_report(
                callback=self.power(device),
                resource_id=device["serial"],
                measurement="power_real",
                unit="W",
                sampling_rate=sampling,
                report_duration=timedelta(hours=1),
            )
            if device["kind"] == "battery":
                client.add_report(
                    callback=self.state_of_charge(device["serial"]),
                    resource_id=device["serial"],
                    measurement="stateOfCharge",
                    unit="%",
                    sampling_rate=sampling,
                    report_duration=timedelta(hours=1),
                )
        return client


class Command(BaseCommand):
    help = "Run the demo sites' OpenADR VENs (openleadr clients)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=None, help="default: OPENADR_VTN_PORT")
        parser.add_argument("--report-seconds", type=int, default=60)

    def handle(self, *args, **options):
        port = options["port"] if options["port"] is not None else conf.get("OPENADR_VTN_PORT")
        url = f"http://{options['host']}:{port}{PATH_PREFIX}"
        asyncio.run(self._main(url, timedelta(seconds=options["report_seconds"])))

    async def _main(self, url: str, sampling: timedelta) -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        clients: dict[str, OpenADRClient] = {}
        while not stop.done():
            for spec in await sync_to_async(_vens)():
                if spec["ven_name"] in clients:
                    continue
                client = SimulatedSite(spec).client(url, sampling)
                try:
                    await client.run()  # stops itself when the registration is refused
                except Exception as exc:  # noqa: BLE001 - VTN not up yet: next round
                    logger.info("VEN %s: %s", spec["ven_name"], exc)
                    await client.stop()
                    continue
                if client.registration_id:
                    clients[spec["ven_name"]] = client
                    self.stdout.write(f"VEN {spec['ven_name']} registered as {client.ven_id}")
            await asyncio.wait([stop], timeout=30)
        for client in clients.values():
            await client.stop()
