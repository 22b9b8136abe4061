"""Ingest benchmark (issue 3, acceptance 2) — one run with 10,000 simulated meters.

Everything runs on this machine at once, in its own database (es_bench), its own Mosquitto on a
free port and its own Redis database for Celery, with its own bridge and worker processes.

Two message shapes are measured in the same run, with the same processes:
- `readings_per_message` 1: every meter publishes its own reading (the hardest case for MQTT);
- `readings_per_message` 100 (BENCH_INGEST_SHAPES): a gateway (data concentrator) publishes
  the readings of many meters in one message, as message format v1 allows.

For each shape:
1. bare subscriber: the same messages into a paho subscriber that does nothing (QoS 1), once
   with paho's Client as shipped (`bare_subscriber_rate`, the acceptance's baseline) and once
   with the bridge's tuned subclass of it (`bare_subscriber_rate_tuned`, mqtt_client.Client);
   the end-to-end rate is printed as a share of each;
2. burst: INTERVALS × 10,000 readings offered as fast as two C publishers go → bridge (raw COPY,
   ack) → Celery ingest workers (signature recovery, VEE, INSERT … ON CONFLICT) → committed:
   rate, CPU per reading by process, p50/p99 publish → commit;
3. sustained: further readings offered at a steady rate for SUSTAIN_S seconds, once for each
   of SUSTAIN_RATES readings/s (the 10,000/s target itself, and 20 % above it): committed rate
   from the first publish to the last commit (`sustained_rate`: a pipeline that keeps up
   scores the offered rate less one latency in the window) and from the first commit to the
   last (`sustained_commit_rate`: the flow itself), and p50/p99 publish → commit;
4. below capacity: BELOW_READINGS further readings paced at BELOW_SHARE of the burst rate just
   measured: p50/p99 publish → commit when the pipeline is not overloaded (on a machine that
   cannot sustain the offered rate, step 3's latency only measures the growing backlog).
Once per run: the raw COPY rate of the same rows, peak RSS of the bridge and the workers, and
`cpu_reference_recover_us`, one secp256k1 public-key recovery on this machine (the floor of the
ingest cost, to compare runs on different machines).

Messages are signed before the clock starts (the devices sign, not us). Every figure carries
`readings_per_message` where it depends on the shape.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = "ingest"
METERS = int(os.environ.get("BENCH_INGEST_METERS", 10_000))
INTERVALS = int(os.environ.get("BENCH_INGEST_INTERVALS", 12))
SHAPES = [int(s) for s in os.environ.get("BENCH_INGEST_SHAPES", "1,100").split(",") if s]
WORKERS = int(os.environ.get("BENCH_INGEST_WORKERS", 2))
BRIDGES = int(os.environ.get("BENCH_INGEST_BRIDGES", 1))
PUBLISHERS = int(os.environ.get("BENCH_INGEST_PUBLISHERS", 2))
SUSTAIN_RATES = [
    float(r) for r in os.environ.get("BENCH_INGEST_SUSTAIN_RATES", "10000,12000").split(",") if r
]
SUSTAIN_S = float(os.environ.get("BENCH_INGEST_SUSTAIN_S", 20))
BELOW_READINGS = int(os.environ.get("BENCH_INGEST_BELOW_READINGS", 60_000))
BELOW_SHARE = float(os.environ.get("BENCH_INGEST_BELOW_SHARE", 0.8))
DB = os.environ.get("BENCH_INGEST_DB", "es_bench")
REDIS_DB = os.environ.get("BENCH_INGEST_REDIS_DB", "11")
PREFIX = "bench/v1"
STEP = 900


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    redis = f"redis://127.0.0.1:6379/{REDIS_DB}"
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "CELERY_BROKER_URL": redis,
        "CELERY_RESULT_BACKEND": redis,
        "CACHE_KEY_PREFIX": "bench-ingest",
        "CHANNEL_LAYER_PREFIX": "bench-ingest",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "LOG_LEVEL": "WARNING",
    }


def _prepare_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{DB}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=_env(), check=True,
    )  # fmt: skip


def _start_broker(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)])
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return proc, port


def _sign_slice(args) -> list[tuple[int, str, int, bytes]]:
    """(interval start, serial, seq, encoded reading) for `intervals` consecutive intervals of
    each meter, registers running on across them as a real meter's do."""
    from apps.demo.keys import demo_device_key
    from apps.meters.simulator import SimMeter, encode, reading_doc, synthetic_energy

    serials, first, intervals = args
    out = []
    for serial in serials:
        meter = SimMeter(serial, demo_device_key(serial))
        for k in range(intervals):
            start = first + STEP * k
            imp, exp = synthetic_energy(serial, start)
            meter.register_import_wh += imp
            meter.register_export_wh += exp
            out.append((start, serial, start // STEP, encode(reading_doc(meter, start, imp, exp))))
    return out


@dataclass
class Phase:
    """Messages of one measured phase: MQTT messages, and for each the readings it carries."""

    per_message: int
    first: int  # first interval start
    messages: list[tuple[str, bytes]]
    keys: list[list[tuple[str, int]]]  # (serial, seq) of each message's readings

    @property
    def readings(self) -> int:
        return sum(len(k) for k in self.keys)


def _phase(rows: list[tuple[int, str, int, bytes]], per_message: int) -> Phase:
    rows = sorted(rows)  # interval by interval, like real meters
    messages, keys = [], []
    for i in range(0, len(rows), per_message):
        group = rows[i : i + per_message]
        if per_message == 1:
            _, serial, seq, body = group[0]
            messages.append((f"{PREFIX}/meters/{serial}/readings", body))
        else:
            body = b'{"v":1,"readings":[' + b",".join(r[3] for r in group) + b"]}"
            messages.append((f"{PREFIX}/meters/gw{i // per_message}/readings", body))
        keys.append([(serial, seq) for _, serial, seq, _ in group])
    return Phase(per_message, rows[0][0], messages, keys)


def _signed_phases(serials: list[str], first: int) -> list[tuple[Phase, list[Phase], Phase]]:
    """(burst, [sustained at each rate], below capacity) phases for every shape, on
    consecutive intervals, signed in parallel."""
    import multiprocessing

    sustain_counts = [int(rate * SUSTAIN_S) for rate in SUSTAIN_RATES]
    sustain_spans = [-(-n // METERS) for n in sustain_counts]
    below_intervals = -(-BELOW_READINGS // METERS)
    per_shape = INTERVALS + sum(sustain_spans) + below_intervals
    total = per_shape * len(SHAPES)
    chunks = [(serials[i : i + 500], first, total) for i in range(0, len(serials), 500)]
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 2) as pool:
        rows = [row for part in pool.map(_sign_slice, chunks) for row in part]
    by_interval: dict[int, list] = {}
    for row in rows:
        by_interval.setdefault((row[0] - first) // STEP, []).append(row)
    out = []
    for s, per_message in enumerate(SHAPES):
        base = s * per_shape

        def span(lo: int, hi: int, base=base) -> list:
            return [r for k in range(base + lo, base + hi) for r in by_interval[k]]

        burst = _phase(span(0, INTERVALS), per_message)
        sustained, lo = [], INTERVALS
        for count, width in zip(sustain_counts, sustain_spans, strict=True):
            sustained.append(_phase(span(lo, lo + width)[:count], per_message))
            lo += width
        below_rows = span(lo, per_shape)[:BELOW_READINGS]
        out.append((burst, sustained, _phase(below_rows, per_message)))
    return out


def _publish(port: int, phase: Phase, marks: dict, rate: float | None = None) -> None:
    """Publish with QoS 1 through `mosquitto_pub -l` (the C client: the devices' side must not
    be the bottleneck of the measurement), PUBLISHERS processes in parallel, ~1000 readings per
    write. `marks[i]` is the wall time message i's chunk was handed to a publisher (the pipe
    holds < 64 KiB, so that is within a few hundred readings of the send). With `rate`
    (readings/s) the chunks are paced: reading r goes out at start + r / rate."""
    topic = f"{PREFIX}/meters/bench/readings"
    # mosquitto_pub -l disconnects at the first PUBACK whose 16-bit packet id equals that of
    # its last message once stdin has ended: a publisher that has read more than 65,535
    # messages ahead of its acks stops early and drops the rest: at most 60,000 messages each.
    publishers = max(PUBLISHERS, -(-len(phase.messages) // 60_000))
    procs = [
        subprocess.Popen(
            ["mosquitto_pub", "-p", str(port), "-q", "1", "-M", "1000", "-l", "-t", topic,
             "-i", f"bench-pub-{k}-{os.getpid()}"],
            stdin=subprocess.PIPE,
        )
        for k in range(publishers)
    ]  # fmt: skip
    chunk = max(1, 1000 // phase.per_message)
    bodies = [body for _, body in phase.messages]
    started = time.time()

    def feed(k: int) -> None:
        stdin = procs[k].stdin
        for i in range(k * chunk, len(bodies), chunk * publishers):
            if rate:
                time.sleep(max(0.0, started + i * phase.per_message / rate - time.time()))
            marks[i] = time.time()
            stdin.write(b"\n".join(bodies[i : i + chunk]) + b"\n")
        stdin.close()

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(publishers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for proc in procs:
        proc.wait(300)


def bench_bare_subscriber(port: int, phase: Phase, *, tuned: bool) -> float:
    """Readings/s into a paho subscriber that does nothing: MQTT v5, QoS 1, paho's automatic
    acks. `tuned`: the bridge's own client class (mqtt_client.Client, paho with its receive
    path tuned); otherwise paho's Client as shipped."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from apps.meters import mqtt_client

    received = {"n": 0, "last": 0.0}
    done = threading.Event()
    client_id = f"bench-bare-{phase.per_message}-{'tuned' if tuned else 'paho'}"
    if tuned:
        sub = mqtt_client.make_client(client_id)
    else:
        sub = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
            protocol=paho.MQTTv5,
        )  # fmt: skip
        sub.max_inflight_messages_set(1000)
    total = len(phase.messages)

    def on_message(client, userdata, message):
        received["n"] += 1
        received["last"] = time.time()
        if received["n"] >= total:
            done.set()

    subscribed = threading.Event()
    sub.on_message = on_message
    group = client_id  # its own share group: a session left over from the other run takes none
    sub.on_connect = lambda c, *a: c.subscribe(f"$share/{group}/{PREFIX}/meters/+/readings", qos=1)
    sub.on_subscribe = lambda *a: subscribed.set()
    mqtt_client.connect_client(sub, mqtt_client.Broker("127.0.0.1", port))
    sub.loop_start()
    subscribed.wait(10)
    started = time.time()
    _publish(port, phase, {})
    done.wait(120)
    sub.loop_stop()
    sub.disconnect()
    if received["n"] != total:
        raise RuntimeError(f"bare subscriber got {received['n']} of {total} messages")
    return received["n"] * phase.per_message / max(received["last"] - started, 1e-9)


def bench_copy(rows: list[tuple]) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute("CREATE TABLE bench_copy (LIKE meters_reading INCLUDING ALL)")
        started = time.perf_counter()
        with cursor.cursor.copy(
            "COPY bench_copy (meter_id, interval_start, interval_seconds, import_wh, export_wh, "
            "register_import_wh, register_export_wh, status, seq, signature, quality, source, "
            "ingested_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return len(rows) / elapsed


def bench_reference_recover_us(n: int = 2000) -> float:
    """µs per secp256k1 public-key recovery (coincurve) on this machine: what every reading
    costs at least, whatever the pipeline around it."""
    import coincurve

    key = coincurve.PrivateKey(bytes(31) + b"\x07")
    digest = bytes(range(32))
    sig = key.sign_recoverable(digest, hasher=None)
    started = time.perf_counter()
    for _ in range(n):
        coincurve.PublicKey.from_signature_and_message(sig, digest, hasher=None)
    return 1e6 * (time.perf_counter() - started) / n


def _rss_sampler(pids: dict[str, list[int]], peaks: dict[str, float], stop: threading.Event):
    import psutil

    while not stop.is_set():
        for name, plist in pids.items():
            total = 0
            for pid in plist:
                try:
                    proc = psutil.Process(pid)
                    total += proc.memory_info().rss
                    total += sum(c.memory_info().rss for c in proc.children(recursive=True))
                except psutil.Error:
                    continue
            peaks[name] = max(peaks.get(name, 0), total)
        time.sleep(0.2)


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of processes and their children (alive ones)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            continue
    return total


def _cpu_by_name(name: str, title: str = "") -> dict[int, float]:
    """CPU seconds of every live process called `name` (e.g. all PostgreSQL backends), with the
    reaped children of each: a backend that exits (a worker's connection reaching CONN_MAX_AGE)
    moves its time to the postmaster's children times, and would otherwise go uncounted. With
    `title`, only processes whose command line (a backend's process title names its database)
    contains it."""
    import psutil

    out = {}
    for p in psutil.process_iter(["name", "cpu_times", "cmdline"]):
        if p.info["name"] != name or (t := p.info["cpu_times"]) is None:
            continue
        if title and title not in " ".join(p.info["cmdline"] or ()):
            continue
        out[p.pid] = t.user + t.system + t.children_user + t.children_system
    return out


class CpuMeter:
    """CPU seconds spent by each part of the pipeline between start() and stop()."""

    SERVERS = {"postgres": "postgres", "redis": "redis-server"}

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups

    def start(self) -> None:
        self.before = {name: _cpu_seconds(pids) for name, pids in self.groups.items()}
        self.servers = {name: _cpu_by_name(proc) for name, proc in self.SERVERS.items()}
        self.own_backends = _cpu_by_name("postgres", f" {DB} ")
        self.children = os.times()

    def stop(self) -> dict[str, float]:
        out = {name: _cpu_seconds(pids) - self.before[name] for name, pids in self.groups.items()}
        for name, proc in self.SERVERS.items():
            now, before = _cpu_by_name(proc), self.servers[name]
            # A process that exited in the window (a backend whose connection closed) moved its
            # whole lifetime's CPU into its parent's children times: take away what it had
            # already spent before the window (a long-lived worker backend's, from an earlier
            # phase, made one window's PostgreSQL figure several times too large).
            out[name] = sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items()) - sum(
                cpu for pid, cpu in before.items() if pid not in now
            )
        # Only the backends connected to the bench's database (the server's other databases
        # belong to whoever else uses this machine); a backend that exited in the window is
        # missed here, so this is a floor.
        now, before = _cpu_by_name("postgres", f" {DB} "), self.own_backends
        out["postgres_bench_db"] = sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())
        after = os.times()  # the mosquitto_pub children of this process
        before = self.children
        out["publisher"] = (after.children_user + after.children_system
                            - before.children_user - before.children_system)  # fmt: skip
        return out


def _wait_committed(expected: int, timeout: float) -> int:
    """Wait until the ingest workers have accounted for `expected` readings in all (processed
    batches' counts: a cheap query on the batch table, not a count over the readings)."""
    from django.db.models import F, Sum

    from apps.meters.models import RawBatch

    deadline = time.time() + timeout
    while True:
        done = RawBatch.objects.filter(status=RawBatch.Status.PROCESSED).aggregate(
            n=Sum(F("accepted") + F("duplicates") + F("conflicts") + F("rejected"))
        )["n"] or 0  # fmt: skip
        if done >= expected or time.time() > deadline:
            return done
        time.sleep(0.25)


def _offer(
    port: int, phase: Phase, expected: int, *, rate: float | None = None, timeout: float = 300
) -> tuple[dict, float, float]:
    """Publish a phase (paced at `rate` readings/s, or as fast as the publishers go) and wait
    until the workers have accounted for `expected` readings in all. Returns the publish marks,
    the start time and how long publishing took."""
    marks: dict = {}
    t0 = time.time()
    _publish(port, phase, marks, rate=rate)
    offered_s = time.time() - t0
    _wait_committed(expected, timeout)
    return marks, t0, offered_s


def _measure(phase: Phase, marks: dict, t0: float, ids: dict[str, int]) -> dict:
    """Committed readings of a phase, their rate from t0 to the last commit, and the latency of
    each reading from its message's publish mark to its commit (Reading.ingested_at, PostgreSQL
    clock_timestamp() at the INSERT)."""
    from datetime import UTC, datetime

    from apps.meters.models import Reading

    sent: dict[tuple[int, int], float] = {}
    chunk = max(1, 1000 // phase.per_message)
    for i, keys in enumerate(phase.keys):
        mark = marks[i - i % chunk]
        for serial, seq in keys:
            sent[(ids[serial], seq)] = mark
    last_start = max(seq for keys in phase.keys for _, seq in keys) * STEP
    rows = Reading.objects.filter(
        interval_start__gte=datetime.fromtimestamp(phase.first, UTC),
        interval_start__lte=datetime.fromtimestamp(last_start, UTC),
    ).values_list("meter_id", "seq", "ingested_at")
    latencies, first, last = [], float("inf"), 0.0
    for meter_id, seq, ingested in rows.iterator(chunk_size=20_000):
        moment = ingested.timestamp()
        first, last = min(first, moment), max(last, moment)
        if (meter_id, seq) in sent:
            latencies.append(moment - sent[(meter_id, seq)])
    latencies.sort()
    n = len(latencies)
    return {
        "committed": n,
        "rate": n / max(last - t0, 1e-9),
        # the flow through the pipeline: first commit → last commit (equal to the offered rate
        # when the pipeline keeps up; `rate` also counts one end-to-end latency)
        "commit_rate": (n - 1) / max(last - first, 1e-9) if n > 1 else float("nan"),
        "p50": latencies[n // 2] if n else float("nan"),
        "p99": latencies[int(0.99 * (n - 1))] if n else float("nan"),
    }


def run() -> None:
    os.environ.update(_env())
    sys.path.insert(0, str(ROOT))
    from bench.common import emit

    _prepare_database()
    from bench.common import setup_django

    setup_django()
    from datetime import UTC, datetime

    import coincurve

    from apps.demo.keys import demo_device_key
    from apps.meters.models import Meter
    from apps.meters.signing import address_from_public_key

    emit(BENCH, "cpu_reference_recover_us", bench_reference_recover_us(), "us")
    serials = [f"BENCH-{i:05d}" for i in range(METERS)]
    now = int(time.time())
    first = now - now % 86400 - 3 * 86400  # three days ago: every interval has ended
    active = datetime(2020, 1, 1, tzinfo=UTC)
    meters = []
    for serial in serials:
        public = coincurve.PrivateKey(demo_device_key(serial)).public_key.format(compressed=False)
        meters.append(
            Meter(serial=serial, capacity_w=30_000, active_from=active, public_key=public.hex(),
                  address=address_from_public_key(public))
        )  # fmt: skip
    Meter.objects.bulk_create(meters, batch_size=2000)
    ids = dict(Meter.objects.values_list("serial", "id"))
    phases = _signed_phases(serials, first)
    emit(BENCH, "readings", METERS * INTERVALS, "readings", meters=METERS, intervals=INTERVALS,
         shapes=SHAPES, sustained_rates=SUSTAIN_RATES, sustained_s=SUSTAIN_S)  # fmt: skip

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    broker, port = _start_broker(tmp)
    procs: list[subprocess.Popen] = []
    try:
        # Before any bridge subscribes (it would receive these messages too).
        bare = {burst.per_message: bench_bare_subscriber(port, burst, tuned=False)
                for burst, *_ in phases}  # fmt: skip
        bare_tuned = {burst.per_message: bench_bare_subscriber(port, burst, tuned=True)
                      for burst, *_ in phases}  # fmt: skip

        # The same rows the pipeline writes (every signed field + a 65-byte signature).
        stamp = datetime.now(tz=UTC)
        rows = [
            (mid, datetime.fromtimestamp(first + STEP * k, UTC), STEP, 100, 0, 100 * (k + 1), 0,
             0, (first + STEP * k) // STEP, bytes(65), 0, "mqtt", stamp)
            for k in range(INTERVALS)
            for mid in ids.values()
        ]  # fmt: skip
        emit(BENCH, "raw_copy_rate", bench_copy(rows), "rows/s")

        env = _env()
        for b in range(BRIDGES):
            procs.append(subprocess.Popen(
                [sys.executable, "manage.py", "mqtt_bridge", "--client-id", f"bench-bridge-{b}",
                 "--broker", f"mqtt://127.0.0.1:{port}", "--prefix", PREFIX, "--group", "bench",
                 "--batch-size", "5000", "--batch-bytes", str(2 << 20), "--batch-ms", "250"],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True))  # fmt: skip
        for bridge in procs:  # wait for each bridge's SUBACK (readiness line)
            deadline = time.time() + 60
            while time.time() < deadline and "subscribed" not in bridge.stdout.readline():
                pass
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "ingest",
             "-c", str(WORKERS), "--prefetch-multiplier", "1", "-l", "INFO",
             "-n", f"bench-ingest-{os.getpid()}@%h"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)  # fmt: skip
        ready = threading.Event()

        log_path = os.environ.get("BENCH_INGEST_WORKER_LOG")  # keep the worker log to study
        log = open(log_path, "w") if log_path else None  # noqa: SIM115 - closed with the stream

        def drain(stream=worker.stderr):
            for line in stream:  # keep the pipe empty; note when the worker is ready
                if " ready." in line:
                    ready.set()
                if log:
                    log.write(f"{time.time():.3f} {line}")
            if log:
                log.close()

        threading.Thread(target=drain, daemon=True).start()
        ready.wait(120)
        bridge_pids = [p.pid for p in procs]
        procs.append(worker)
        peaks: dict[str, float] = {}
        stop = threading.Event()
        threading.Thread(
            target=_rss_sampler,
            args=({"bridge": bridge_pids, "workers": [worker.pid]}, peaks, stop),
            daemon=True,
        ).start()
        cpu = CpuMeter({"bridge": bridge_pids, "workers": [worker.pid], "broker": [broker.pid]})

        expected = 0
        for burst, sustained, below in phases:
            shape = {"readings_per_message": burst.per_message}
            emit(BENCH, "bare_subscriber_rate", bare[burst.per_message], "readings/s",
                 client="paho as shipped", **shape)  # fmt: skip
            emit(BENCH, "bare_subscriber_rate_tuned", bare_tuned[burst.per_message],
                 "readings/s", client="mqtt_client.Client", **shape)  # fmt: skip

            # Burst: everything offered at once; the backlog drains at the pipeline's capacity.
            expected += burst.readings
            cpu.start()
            marks, t0, offered_s = _offer(port, burst, expected, timeout=600)
            spent = cpu.stop()
            m = _measure(burst, marks, t0, ids)
            for name, seconds in spent.items():  # where the two cores went (µs per reading)
                emit(BENCH, f"cpu_{name}", 1e6 * seconds / max(m["committed"], 1), "us/reading",
                     **shape)  # fmt: skip
            emit(BENCH, "end_to_end_rate", m["rate"], "readings/s", committed=m["committed"],
                 offered=burst.readings, offered_in_s=round(offered_s, 2), **shape)  # fmt: skip
            emit(BENCH, "end_to_end_vs_bare", 100 * m["rate"] / bare[burst.per_message], "%",
                 **shape)  # fmt: skip
            emit(BENCH, "end_to_end_vs_bare_tuned",
                 100 * m["rate"] / bare_tuned[burst.per_message], "%", **shape)  # fmt: skip
            emit(BENCH, "p99_publish_to_commit_burst", m["p99"], "s", **shape)
            emit(BENCH, "p50_publish_to_commit_burst", m["p50"], "s", **shape)
            capacity = m["rate"]

            # Sustained: a steady rate for SUSTAIN_S seconds, at each of SUSTAIN_RATES.
            for offered_rate, phase in zip(SUSTAIN_RATES, sustained, strict=True):
                expected += phase.readings
                marks, t0, _ = _offer(port, phase, expected, rate=offered_rate)
                m = _measure(phase, marks, t0, ids)
                emit(BENCH, "sustained_rate", m["rate"], "readings/s", offered_rate=offered_rate,
                     offered=phase.readings, committed=m["committed"], seconds=SUSTAIN_S,
                     **shape)  # fmt: skip
                emit(BENCH, "sustained_commit_rate", m["commit_rate"], "readings/s",
                     offered_rate=offered_rate, **shape)  # fmt: skip
                emit(BENCH, "p99_publish_to_commit_sustained", m["p99"], "s",
                     offered_rate=offered_rate, **shape)  # fmt: skip
                emit(BENCH, "p50_publish_to_commit_sustained", m["p50"], "s",
                     offered_rate=offered_rate, **shape)  # fmt: skip

            # Below capacity: latency when the pipeline keeps up.
            rate = BELOW_SHARE * capacity
            expected += below.readings
            marks, t0, _ = _offer(port, below, expected, rate=rate)
            m = _measure(below, marks, t0, ids)
            emit(BENCH, "p99_publish_to_commit_below_capacity", m["p99"], "s",
                 offered_rate=round(rate), committed=m["committed"], offered=below.readings,
                 **shape)  # fmt: skip
            emit(BENCH, "p50_publish_to_commit_below_capacity", m["p50"], "s",
                 offered_rate=round(rate), **shape)  # fmt: skip
        stop.set()
        emit(BENCH, "peak_rss_bridge", peaks.get("bridge", 0) / 2**20, "MiB", bridges=BRIDGES)
        emit(BENCH, "peak_rss_workers", peaks.get("workers", 0) / 2**20, "MiB", workers=WORKERS)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run()
