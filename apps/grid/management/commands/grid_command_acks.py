"""`manage.py grid_command_acks`: listen for device acknowledgements of dispatch commands on
<prefix>/devices/+/acks and record them (run alongside the worker; Ctrl-C stops)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from apps.grid.commands_mqtt import ack_subscription, listen_acks
from apps.grid.services import device_command_acknowledge


class Command(BaseCommand):
    help = "Record devices' acknowledgements of dispatch set points (MQTT)."

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        signal.signal(signal.SIGINT, lambda *a: stop.set())

        def on_ack(serial: str, doc: dict) -> None:
            status = str(doc.get("status", "")).lower()
            cmd = device_command_acknowledge(
                serial=serial,
                command_id=str(doc["command_id"]),
                accepted=status in ("accepted", "ok", "acknowledged"),
                detail=doc,
            )
            if cmd is not None:
                self.stdout.write(f"{serial}: command {cmd.command_id} {cmd.status}")

        self.stdout.write(f"listening on {ack_subscription()}")
        listen_acks(on_ack, stop=stop.is_set)
