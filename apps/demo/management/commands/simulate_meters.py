"""`python manage.py simulate_meters --meters N --speed X` — publish signed demo readings."""

from __future__ import annotations

import random
import time
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.demo.keys import demo_device_key
from apps.demo.simulation import demo_energy_source
from apps.meters import mqtt_client
from apps.meters.models import Meter
from apps.meters.selectors import meter_latest_registers
from apps.meters.simulator import (
    STEP,
    Faults,
    SimMeter,
    encode,
    interval_messages,
    status_doc,
)


class Command(BaseCommand):
    help = (
        "Publish signed readings of N registered meters over MQTT from the demo profiles. "
        "Simulated time runs X times faster than real time but never passes the wall clock."
    )

    def add_arguments(self, parser):
        parser.add_argument("--meters", type=int, default=50)
        parser.add_argument("--speed", type=float, default=1.0)
        parser.add_argument("--broker", default=settings.IOT_BROKER_URL)
        parser.add_argument("--prefix", default=settings.MQTT_TOPIC_PREFIX)
        parser.add_argument("--gateway-batch", type=int, default=1,
                            help="Readings per message (a gateway batch) when > 1.")  # fmt: skip
        parser.add_argument("--intervals", type=int, default=0, help="Stop after N intervals.")
        parser.add_argument("--seed", type=int, default=1)
        for name in ("bad-signature", "duplicates", "conflicts", "gaps", "spikes",
                     "clock-drift", "replay"):  # fmt: skip
            parser.add_argument(f"--{name}", type=float, default=0.0,
                                help=f"Probability of the {name} fault per reading.")  # fmt: skip

    def handle(self, *args, **opts):
        names = ("bad_signature", "duplicates", "conflicts", "gaps", "spikes", "clock_drift",
                 "replay")  # fmt: skip
        faults = Faults(**{k: opts[k] for k in names})
        meters_qs = list(Meter.objects.order_by("serial")[: opts["meters"]])
        if not meters_qs:
            self.stderr.write("No meters registered: run `manage.py demo_cooperative` first.")
            return
        latest = meter_latest_registers(meter_ids=[m.pk for m in meters_qs])
        now = int(time.time())
        sims, starts = [], []
        for m in meters_qs:
            last = latest.get(m.pk)
            sims.append(SimMeter(m.serial, demo_device_key(m.serial),
                                 last.register_import_wh if last else 0,
                                 last.register_export_wh if last else 0))  # fmt: skip
            starts.append(
                int(last.interval_start.timestamp()) + STEP if last else now - now % STEP - STEP
            )
        sim_t = min(starts)
        energy = demo_energy_source()
        rng = random.Random(opts["seed"])
        client = mqtt_client.make_client(f"es-sim-{uuid.uuid4().hex[:8]}")
        mqtt_client.connect_client(client, mqtt_client.broker_from_url(opts["broker"]))
        client.loop_start()
        sent = intervals = 0
        self.stdout.write(f"simulating {len(sims)} meters from {sim_t} at speed {opts['speed']}")
        try:
            wall0, sim0 = time.monotonic(), sim_t
            while not opts["intervals"] or intervals < opts["intervals"]:
                target = sim0 + (time.monotonic() - wall0) * opts["speed"]
                if sim_t + STEP > min(target, time.time()):
                    time.sleep(0.2)
                    continue
                due = [s for s, first in zip(sims, starts, strict=True) if first <= sim_t]
                pending: dict[str, list[dict]] = {}
                for serial, doc in interval_messages(due, sim_t, energy, faults, rng):
                    if opts["gateway_batch"] > 1:
                        group = pending.setdefault("gw", [])
                        group.append(doc)
                        if len(group) >= opts["gateway_batch"]:
                            client.publish(mqtt_client.readings_topic(opts["prefix"], "gateway"),
                                           encode({"v": 1, "readings": group}), qos=1)  # fmt: skip
                            pending["gw"] = []
                    else:
                        client.publish(mqtt_client.readings_topic(opts["prefix"], serial),
                                       encode(doc), qos=1)  # fmt: skip
                    sent += 1
                if pending.get("gw"):
                    client.publish(mqtt_client.readings_topic(opts["prefix"], "gateway"),
                                   encode({"v": 1, "readings": pending["gw"]}), qos=1)  # fmt: skip
                sim_t += STEP
                intervals += 1
                if intervals % 4 == 0:
                    for s in due:
                        mqtt_client.publish_json(client, mqtt_client.status_topic(
                            opts["prefix"], s.serial), status_doc(s.serial, s.key,
                            now=time.time()))  # fmt: skip
        except KeyboardInterrupt:
            pass
        finally:
            time.sleep(0.5)
            client.loop_stop()
            client.disconnect()
        self.stdout.write(f"published {sent} readings over {intervals} intervals")
