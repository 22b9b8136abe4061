"""`manage.py simulate_device SERIAL --cooperative-address 0x…`: one simulated device on the
broker under its own account. It publishes a signed status message every `--status-every`
seconds, verifies every command on its command topic (signed by the cooperative, for this
device, unexpired, sequence number above the last one applied: a replayed command is refused)
and answers each with an acknowledgement signed by its key. It applies a configuration message
on its config topic only when it is signed by the cooperative, for this device (signed serial =
topic serial), unexpired and newer (sequence number) than the last one applied. The device key
is read from the environment (`DEVICE_KEY`, 64 hex), the broker URL with the device's account
from `--broker` or `DEVICE_BROKER_URL`. Prints one line per command: `applied <id>` or
`refused <id>: <reason>`, and per configuration message: `configured seq <n>` or
`refused config seq <n>: <reason>`.

A battery (`--capacity-wh`, starting at `--soc-pct`) follows its applied set points and reports
its state of charge (`soc_pct`) in each status; an EV charger reports `--ev-plugged yes|no`
(`ev_plugged`, and `ev_charging` while its set point is above 0)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.meters import mqtt_client
from apps.meters.device_messages import CommandVerifier, ConfigVerifier
from apps.meters.simulator import SimDevice, status_doc


class Command(BaseCommand):
    help = "Run one simulated device: signed status, verified commands, signed acks."

    def add_arguments(self, parser):
        parser.add_argument("serial")
        parser.add_argument("--cooperative-address", required=True,
                            help="address of the cooperative's command key")  # fmt: skip
        parser.add_argument("--broker", default=os.environ.get("DEVICE_BROKER_URL", ""))
        parser.add_argument("--prefix", default=settings.MQTT_TOPIC_PREFIX)
        parser.add_argument("--status-every", type=float, default=3600.0)
        parser.add_argument("--firmware", default="1.4.2")
        parser.add_argument("--capacity-wh", type=int, default=0, help="a battery's capacity")
        parser.add_argument("--soc-pct", type=float, default=50.0)
        parser.add_argument("--ev-plugged", choices=["yes", "no"], default=None)

    def handle(self, *args, **opts):
        serial, prefix = opts["serial"], opts["prefix"]
        try:
            key = bytes.fromhex(os.environ.get("DEVICE_KEY", "").removeprefix("0x"))
        except ValueError as exc:
            raise CommandError("DEVICE_KEY must be the device's private key in hex") from exc
        if len(key) != 32:
            raise CommandError("DEVICE_KEY must be the device's 32-byte private key in hex")
        try:
            broker = mqtt_client.broker_from_url(opts["broker"] or settings.IOT_BROKER_URL)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        cooperative = opts["cooperative_address"]
        device = SimDevice(serial, key, CommandVerifier(serial, cooperative),
                           ConfigVerifier(serial, cooperative))  # fmt: skip
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        signal.signal(signal.SIGINT, lambda *a: stop.set())
        client = mqtt_client.make_client(f"{serial}-{uuid.uuid4().hex[:6]}")
        commands = mqtt_client.device_command_topic(prefix, serial)
        config = mqtt_client.config_topic(prefix, serial)

        def on_connect(c, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                self.stderr.write(f"connect refused: {reason_code}")
                stop.set()
                return
            c.subscribe([(commands, 1), (config, 1)])

        def on_subscribe(c, userdata, mid, reason_codes, properties):
            self.stdout.write(f"device {serial} subscribed ({reason_codes[0]})")
            self.stdout.flush()

        def on_message(c, userdata, message):
            try:
                doc = json.loads(message.payload)
            except (ValueError, UnicodeDecodeError):
                doc = None
            if message.topic != commands:  # the config topic
                seq = doc.get("seq") if isinstance(doc, dict) else None
                topic_serial = message.topic.split("/")[-2]
                refusal = device.configure(doc, datetime.now(UTC), topic_serial=topic_serial)
                if refusal is None:
                    self.stdout.write(f"configured seq {seq}")
                else:
                    self.stdout.write(f"refused config seq {seq}: {refusal}")
                self.stdout.flush()
                return
            ack = device.answer(doc, datetime.now(UTC))
            mqtt_client.publish_json(c, mqtt_client.device_ack_topic(prefix, serial), ack)
            if ack["status"] == "accepted":
                self.stdout.write(f"applied {ack['command_id']}")
            else:
                self.stdout.write(f"refused {ack['command_id']}: {ack['reason']}")
            self.stdout.flush()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        mqtt_client.connect_client(client, broker)
        client.loop_start()
        try:
            next_status = 0.0
            soc_wh = opts["capacity_wh"] * opts["soc_pct"] / 100
            last = time.monotonic()
            while not stop.is_set():
                if time.monotonic() >= next_status and client.is_connected():
                    state: dict = {}
                    now = datetime.now(UTC)
                    setpoint = device.setpoint_w(now)
                    if opts["capacity_wh"]:
                        soc_wh += setpoint * (time.monotonic() - last) / 3600
                        soc_wh = min(max(soc_wh, 0.0), opts["capacity_wh"])
                        state["soc_pct"] = round(100 * soc_wh / opts["capacity_wh"], 1)
                    if opts["ev_plugged"]:
                        plugged = opts["ev_plugged"] == "yes"
                        state.update(ev_plugged=plugged, ev_charging=plugged and setpoint > 0)
                    last = time.monotonic()
                    doc = status_doc(
                        serial, key, now=time.time(), firmware=opts["firmware"], **state
                    )
                    mqtt_client.publish_json(client, mqtt_client.status_topic(prefix, serial), doc)
                    next_status = time.monotonic() + opts["status_every"]
                stop.wait(0.1)
        finally:
            client.loop_stop()
            client.disconnect()
