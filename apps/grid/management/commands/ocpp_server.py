"""`manage.py ocpp_server [--host H] [--port P]`: the OCPP central system for the EV chargers
(OCPP 1.6-J and 2.0.1 over WebSocket at ws://<host>:<port>/ocpp/<charge point id>; default port
`OCPP_PORT`). Ctrl-C stops."""

from __future__ import annotations

import asyncio
import signal

from django.core.management.base import BaseCommand

from apps.grid import conf
from apps.grid.ocpp_central import PATH_PREFIX, central_system, push_changed_profiles_forever


class Command(BaseCommand):
    help = "Run the OCPP central system (1.6-J and 2.0.1) for the EV chargers."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=None, help="default: OCPP_PORT")

    def handle(self, *args, **options):
        host, port = options["host"], options["port"]
        if port is None:
            port = conf.get("OCPP_PORT")
        asyncio.run(self._serve(host, port))

    async def _serve(self, host: str, port: int) -> None:
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        async with central_system(host, port):
            self.stdout.write(f"OCPP central system on ws://{host}:{port}{PATH_PREFIX}<id>")
            pusher = asyncio.create_task(push_changed_profiles_forever(60.0))
            try:
                await stop
            finally:
                pusher.cancel()
