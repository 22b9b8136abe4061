"""`manage.py openadr_vtn [--host H] [--port P]`: the OpenADR 2.0b VTN for demand response
(http://<host>:<port>/OpenADR2/Simple/2.0b; default port `OPENADR_VTN_PORT`). Ctrl-C stops."""

from __future__ import annotations

import asyncio
import signal

from django.core.management.base import BaseCommand

from apps.grid import conf
from apps.grid.openadr_vtn import Vtn


class Command(BaseCommand):
    help = "Run the OpenADR 2.0b VTN (openleadr) that delivers DR events to the VENs."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=None, help="default: OPENADR_VTN_PORT")
        parser.add_argument(
            "--poll-seconds", type=float, default=10.0, help="oadrPoll interval asked of VENs"
        )
        parser.add_argument(
            "--recheck-seconds",
            type=float,
            default=300.0,
            help="longest wait between looks for due events (changes wake the VTN at once)",
        )

    def handle(self, *args, **options):
        port = options["port"] if options["port"] is not None else conf.get("OPENADR_VTN_PORT")
        asyncio.run(
            self._serve(options["host"], port, options["poll_seconds"], options["recheck_seconds"])
        )

    async def _serve(
        self, host: str, port: int, poll_seconds: float, recheck_seconds: float
    ) -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        vtn = Vtn(host, port, poll_seconds=poll_seconds, recheck_seconds=recheck_seconds)
        await vtn.start()
        self.stdout.write(f"OpenADR 2.0b VTN on {vtn.url}")
        try:
            await stop
        finally:
            await vtn.stop()
