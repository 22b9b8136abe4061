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
        parser.add_argument(
            "--spread",
            action="store_true",
            help="Spread the meters' reports evenly over the next interval (meter k of n reports "
            "k/n of 15 minutes after the interval ends), as real meters on a head-end do, "
            "instead of every meter at the interval boundary.",
        )
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
        n = len(sims)
        # Seconds after the end of an interval at which each meter reports it.
        offsets = [(k * STEP) // n if opts["spread"] else 0 for k in range(n)]
        next_t = list(starts)  # each meter's next interval to report
        done = [0] * n
        energy = demo_energy_source()
        rng = random.Random(opts["seed"])
        client = mqtt_client.make_client(f"es-sim-{uuid.uuid4().hex[:8]}")
        mqtt_client.connect_client(client, mqtt_client.broker_from_url(opts["broker"]))
        client.loop_start()
        sent = 0
        self.stdout.write(
            f"simulating {n} meters from {min(starts)} at speed {opts['speed']}"
            + (" (reports spread over each interval)" if opts["spread"] else "")
        )
        try:
            # Simulated time starts when the first report is due and runs `speed` times faster
            # than real time, but never passes the wall clock.
            clock0 = min(t + STEP + o for t, o in zip(next_t, offsets, strict=True))
            wall0 = time.monotonic()
            while not opts["intervals"] or min(done) < opts["intervals"]:
                simulated, wall = clock0 + (time.monotonic() - wall0) * opts["speed"], time.time()
                clock = min(simulated, wall)
                groups: dict[int, list[int]] = {}
                for k in range(n):
                    if next_t[k] + STEP + offsets[k] <= clock and (
                        not opts["intervals"] or done[k] < opts["intervals"]
                    ):
                        groups.setdefault(next_t[k], []).append(k)
                if not groups:
                    due = min(t + STEP + o for t, o in zip(next_t, offsets, strict=True))
                    wait = (
                        (due - clock) / max(opts["speed"], 1e-3) if simulated < wall else due - wall
                    )
                    time.sleep(min(5.0, max(0.05, wait)))
                    continue
                for t in sorted(groups):
                    members = [sims[k] for k in groups[t]]
                    sent += self._publish(client, opts, members, t, energy, faults, rng)
                    for k in groups[t]:
                        next_t[k] += STEP
                        done[k] += 1
                        if done[k] % 4 == 0:
                            sim = sims[k]
                            status = status_doc(sim.serial, sim.key, now=time.time())
                            topic = mqtt_client.status_topic(opts["prefix"], sim.serial)
                            mqtt_client.publish_json(client, topic, status)
        except KeyboardInterrupt:
            pass
        finally:
            time.sleep(0.5)
            client.loop_stop()
            client.disconnect()
        intervals = min(done) if done else 0
        self.stdout.write(f"published {sent} readings over {intervals} intervals")

    @staticmethod
    def _publish(client, opts, meters: list[SimMeter], t: int, energy, faults, rng) -> int:
        """One interval of these meters: one message each, or gateway batches; returns sent."""
        sent = 0
        pending: list[dict] = []
        topic = mqtt_client.readings_topic(opts["prefix"], "gateway")
        for serial, doc in interval_messages(meters, t, energy, faults, rng):
            if opts["gateway_batch"] > 1:
                pending.append(doc)
                if len(pending) >= opts["gateway_batch"]:
                    client.publish(topic, encode({"v": 1, "readings": pending}), qos=1)
                    pending = []
            else:
                client.publish(mqtt_client.readings_topic(opts["prefix"], serial), encode(doc),
                               qos=1)  # fmt: skip
            sent += 1
        if pending:
            client.publish(topic, encode({"v": 1, "readings": pending}), qos=1)
        return sent
