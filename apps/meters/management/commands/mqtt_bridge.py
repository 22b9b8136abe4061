"""`python manage.py mqtt_bridge` — MQTT → PostgreSQL ingest bridge (see apps/meters/bridge.py)."""

from __future__ import annotations

import os
import signal
import socket

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.core.gc_tuning import gc_tune_long_running
from apps.meters.bridge import Bridge
from apps.meters.mqtt_client import broker_from_url


class Command(BaseCommand):
    help = "Subscribe (shared, QoS 1, persistent session) and store meter readings in batches."

    def add_arguments(self, parser):
        parser.add_argument(
            "--client-id", default="", help="Stable id: the session survives restarts."
        )
        parser.add_argument("--broker", default=settings.MQTT_BRIDGE_URL)
        parser.add_argument("--prefix", default=settings.MQTT_TOPIC_PREFIX)
        parser.add_argument("--group", default=settings.MQTT_SHARED_GROUP)
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument(
            "--batch-bytes",
            type=int,
            default=1 << 20,
            help="Payload bytes per batch (gateway messages carry many readings each).",
        )
        parser.add_argument("--batch-ms", type=int, default=200)
        parser.add_argument(
            "--session-expiry",
            type=int,
            default=7 * 24 * 3600,
            help="Seconds the broker keeps this bridge's session (and queues for it) while down.",
        )
        parser.add_argument(
            "--ingest",
            choices=("celery", "inline"),
            default="celery",
            help="Hand batches to Celery ingest workers, or process them here.",
        )

    def handle(self, *args, **opts):
        client_id = opts["client_id"] or f"es-bridge-{socket.gethostname()}-{os.getpid()}"
        bridge = Bridge(
            broker=broker_from_url(opts["broker"]),
            prefix=opts["prefix"],
            group=opts["group"],
            client_id=client_id,
            batch_size=opts["batch_size"],
            batch_bytes=opts["batch_bytes"],
            batch_ms=opts["batch_ms"],
            ingest=opts["ingest"],
            session_expiry=opts["session_expiry"],
        )
        gc_tune_long_running()
        signal.signal(signal.SIGTERM, lambda *_: bridge.stop())
        signal.signal(signal.SIGINT, lambda *_: bridge.stop())
        self.stdout.write(f"mqtt_bridge {client_id} on {opts['prefix']} (group {opts['group']})")
        bridge.run()
        self.stdout.write(f"mqtt_bridge stopped: {bridge.stats}")
