"""Ingest benchmark (issue 3, acceptance 2) — one run with 10,000 simulated meters.

Everything runs on this machine at once, in its own database (es_bench), its own Mosquitto on a
free port and its own Redis database for Celery, with its own bridge and worker processes:

1. bare subscriber: the same messages into a paho subscriber that does nothing (QoS 1)
2. raw COPY: the same rows COPYed into PostgreSQL (a table like meters_reading)
3. end to end: messages published → bridge (raw COPY, ack) → Celery ingest workers
   (signature check, VEE, INSERT … ON CONFLICT) → committed; throughput, p99 latency from publish
   to commit (Reading.ingested_at vs the publisher's clock), peak RSS of bridge and workers.

Messages are signed before the clock starts (the devices sign, not us).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = "ingest"
METERS = int(os.environ.get("BENCH_INGEST_METERS", 10_000))
INTERVALS = int(os.environ.get("BENCH_INGEST_INTERVALS", 12))
GATEWAY_BATCH = int(os.environ.get("BENCH_INGEST_GATEWAY_BATCH", 1))
WORKERS = int(os.environ.get("BENCH_INGEST_WORKERS", 2))
BRIDGES = int(os.environ.get("BENCH_INGEST_BRIDGES", 1))
DB = os.environ.get("BENCH_INGEST_DB", "es_bench")
REDIS_DB = os.environ.get("BENCH_INGEST_REDIS_DB", "11")
PREFIX = "bench/v1"


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


def _sign_slice(args) -> list[bytes]:
    from apps.core.demo.keys import demo_device_key
    from apps.meters.simulator import SimMeter, encode, reading_doc, synthetic_energy

    serials, first, intervals = args
    out = []
    for serial in serials:
        meter = SimMeter(serial, demo_device_key(serial))
        for k in range(intervals):
            start = first + 900 * k
            imp, exp = synthetic_energy(serial, start)
            meter.register_import_wh += imp
            meter.register_export_wh += exp
            out.append((start, serial, encode(reading_doc(meter, start, imp, exp))))
    return out


def _messages(
    serials: list[str], first: int, intervals: int = INTERVALS
) -> list[tuple[str, bytes]]:
    chunks = [(serials[i : i + 500], first, intervals) for i in range(0, len(serials), 500)]
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 2) as pool:
        rows = [row for part in pool.map(_sign_slice, chunks) for row in part]
    rows.sort()  # interval by interval, like real meters
    if GATEWAY_BATCH <= 1:
        return [(f"{PREFIX}/meters/{serial}/readings", body) for _, serial, body in rows]
    out = []
    for i in range(0, len(rows), GATEWAY_BATCH):
        group = rows[i : i + GATEWAY_BATCH]
        body = b'{"v":1,"readings":[' + b",".join(b for _, _, b in group) + b"]}"
        out.append((f"{PREFIX}/meters/gw{i}/readings", body))
    return out


PUBLISHERS = int(os.environ.get("BENCH_INGEST_PUBLISHERS", 2))


def _publish(
    port: int, messages: list[tuple[str, bytes]], marks: list, rate: float | None = None
) -> None:
    """Publish with QoS 1 through `mosquitto_pub -l` (the C client: the devices' side must not
    be the bottleneck of the measurement), PUBLISHERS processes in parallel. `marks` gets
    (message index, wall time) every 1000 messages, when the line is handed to the publisher
    (the pipe holds < 64 KiB, so that is within a few hundred messages of the send)."""
    topic = f"{PREFIX}/meters/bench/readings"
    procs = [
        subprocess.Popen(
            ["mosquitto_pub", "-p", str(port), "-q", "1", "-M", "1000", "-l", "-t", topic,
             "-i", f"bench-pub-{k}-{os.getpid()}"],
            stdin=subprocess.PIPE,
        )
        for k in range(PUBLISHERS)
    ]  # fmt: skip

    started = time.time()

    def feed(k: int) -> None:
        stdin = procs[k].stdin
        for i in range(k * 1000, len(messages), 1000 * PUBLISHERS):
            if rate:  # paced: message i goes out at started + i / rate
                time.sleep(max(0.0, started + i / rate - time.time()))
            marks.append((i, time.time()))
            stdin.write(b"\n".join(body for _, body in messages[i : i + 1000]) + b"\n")
        stdin.close()

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(PUBLISHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for proc in procs:
        proc.wait(300)


def bench_bare_subscriber(port: int, messages) -> float:
    from apps.meters import mqtt_client

    received = {"n": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()
    sub = mqtt_client.make_client("bench-bare")

    def on_message(client, userdata, message):
        if received["n"] == 0:
            received["first"] = time.time()
        received["n"] += 1
        received["last"] = time.time()
        if received["n"] >= len(messages):
            done.set()

    subscribed = threading.Event()
    sub.on_message = on_message
    sub.on_connect = lambda c, *a: c.subscribe(f"$share/bare/{PREFIX}/meters/+/readings", qos=1)
    sub.on_subscribe = lambda *a: subscribed.set()
    mqtt_client.connect_client(sub, mqtt_client.Broker("127.0.0.1", port))
    sub.loop_start()
    subscribed.wait(10)
    marks: list = []
    started = time.time()
    _publish(port, messages, marks)
    done.wait(120)
    sub.loop_stop()
    sub.disconnect()
    elapsed = max(received["last"] - started, 1e-9)
    return received["n"] / elapsed


def bench_copy(messages_rows: list[tuple]) -> float:
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
            for row in messages_rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return len(messages_rows) / elapsed


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


def _cpu_by_name(name: str) -> dict[int, float]:
    """CPU seconds of every live process called `name` (e.g. all PostgreSQL backends)."""
    import psutil

    out = {}
    for p in psutil.process_iter(["name", "cpu_times"]):
        if p.info["name"] == name and p.info["cpu_times"] is not None:
            out[p.pid] = p.info["cpu_times"].user + p.info["cpu_times"].system
    return out


def _cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def run() -> None:
    os.environ.update(_env())
    sys.path.insert(0, str(ROOT))
    from bench.common import emit

    _prepare_database()
    from bench.common import setup_django

    setup_django()
    from datetime import UTC, datetime

    import coincurve

    from apps.core.demo.keys import demo_device_key
    from apps.meters.models import Meter, Reading
    from apps.meters.signing import address_from_public_key

    serials = [f"BENCH-{i:05d}" for i in range(METERS)]
    now = int(time.time())
    first = now - now % 86400 - 2 * 86400  # two days ago: every interval has ended
    active = datetime(2020, 1, 1, tzinfo=UTC)
    meters = []
    for serial in serials:
        public = coincurve.PrivateKey(demo_device_key(serial)).public_key.format(compressed=False)
        address = address_from_public_key(public)
        meters.append(
            Meter(serial=serial, capacity_w=30_000, active_from=active, public_key=public.hex(),
                  address=address)
        )  # fmt: skip
    Meter.objects.bulk_create(meters, batch_size=2000)
    messages = _messages(serials, first)
    readings = METERS * INTERVALS
    emit(BENCH, "readings", readings, "readings", meters=METERS, intervals=INTERVALS,
         gateway_batch=GATEWAY_BATCH)  # fmt: skip

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    broker, port = _start_broker(tmp)
    procs: list[subprocess.Popen] = []
    try:
        bare = bench_bare_subscriber(port, messages)
        emit(BENCH, "bare_subscriber_rate", bare * max(GATEWAY_BATCH, 1), "readings/s")

        # The same rows the pipeline writes (every signed field + a 65-byte signature).
        ids = list(Meter.objects.order_by("serial").values_list("id", flat=True))
        stamp = datetime.now(tz=UTC)
        rows = [
            (mid, datetime.fromtimestamp(first + 900 * k, UTC), 900, 100, 0, 100 * (k + 1), 0, 0,
             (first + 900 * k) // 900, bytes(65), 0, "mqtt", stamp)
            for k in range(INTERVALS)
            for mid in ids
        ]  # fmt: skip
        emit(BENCH, "raw_copy_rate", bench_copy(rows), "rows/s")

        env = _env()
        for b in range(BRIDGES):
            procs.append(subprocess.Popen(
                [sys.executable, "manage.py", "mqtt_bridge", "--client-id", f"bench-bridge-{b}",
                 "--broker", f"mqtt://127.0.0.1:{port}", "--prefix", PREFIX, "--group", "bench",
                 "--batch-size", "5000", "--batch-ms", "250"],
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

        def drain(stream=worker.stderr):
            for line in stream:  # keep the pipe empty; note when the worker is ready
                if " ready." in line:
                    ready.set()

        threading.Thread(target=drain, daemon=True).start()
        ready.wait(120)
        procs.append(worker)
        peaks: dict[str, float] = {}
        stop = threading.Event()
        sampler = threading.Thread(
            target=_rss_sampler,
            args=({"bridge": [p.pid for p in procs[:-1]], "workers": [worker.pid]}, peaks, stop),
            daemon=True,
        )
        sampler.start()
        groups = {
            "bridge": [p.pid for p in procs[:-1]],
            "workers": [worker.pid],
            "broker": [broker.pid],
        }
        servers = {"postgres": "postgres", "redis": "redis-server"}
        cpu_before = {name: _cpu_seconds(pids) for name, pids in groups.items()}
        servers_before = {name: _cpu_by_name(proc) for name, proc in servers.items()}
        children_before = os.times()
        marks: list = []
        t0 = time.time()
        _publish(port, messages, marks)
        t_published = time.time()
        deadline = time.time() + 600
        while Reading.objects.count() < readings and time.time() < deadline:
            time.sleep(0.5)
        stop.set()
        cpu_after = {name: _cpu_seconds(pids) for name, pids in groups.items()}
        for name, proc in servers.items():
            cpu_before[name] = 0.0
            cpu_after[name] = _cpu_delta(servers_before[name], _cpu_by_name(proc))
        children_after = os.times()
        committed = Reading.objects.count()
        # Where the two cores went during the end-to-end run (CPU µs per reading).
        publisher = (children_after.children_user + children_after.children_system
                     - children_before.children_user - children_before.children_system)  # fmt: skip
        for name in cpu_after:
            emit(BENCH, f"cpu_{name}", 1e6 * (cpu_after[name] - cpu_before[name]) / committed,
                 "us/reading")  # fmt: skip
        emit(BENCH, "cpu_publisher", 1e6 * publisher / committed, "us/reading")
        last = Reading.objects.order_by("-ingested_at").values_list("ingested_at", flat=True)[0]
        elapsed = last.timestamp() - t0
        emit(BENCH, "end_to_end_rate", committed / elapsed, "readings/s",
             committed=committed, published_in_s=round(t_published - t0, 2))  # fmt: skip
        bare_readings = bare * max(GATEWAY_BATCH, 1)
        emit(BENCH, "end_to_end_vs_bare", 100 * committed / elapsed / bare_readings, "%")
        # p99 publish → commit: each reading's commit time vs the time its message was published
        mark_times = dict(marks)
        per_message = max(GATEWAY_BATCH, 1)
        latencies = []
        order = {}
        for i, (_, body) in enumerate(messages):
            pub_time = mark_times[i - i % 1000]
            if per_message == 1:
                doc = json.loads(body)
                order[(doc["serial"], doc["seq"])] = pub_time
            else:
                for doc in json.loads(body)["readings"]:
                    order[(doc["serial"], doc["seq"])] = pub_time
        for serial, seq, ingested in Reading.objects.values_list(
            "meter__serial", "seq", "ingested_at"
        ).iterator(chunk_size=20_000):
            if (serial, seq) in order:
                latencies.append(ingested.timestamp() - order[(serial, seq)])
        latencies.sort()
        if latencies:
            # a burst far above capacity: this p99 is the time to drain the backlog
            emit(BENCH, "p99_publish_to_commit_burst", latencies[int(0.99 * (len(latencies) - 1))],
                 "s", offered_in_s=round(t_published - t0, 2))  # fmt: skip
            emit(BENCH, "p50_publish_to_commit_burst", latencies[len(latencies) // 2], "s")
        emit(BENCH, "peak_rss_bridge", peaks.get("bridge", 0) / 2**20, "MiB", bridges=BRIDGES)
        emit(BENCH, "peak_rss_workers", peaks.get("workers", 0) / 2**20, "MiB", workers=WORKERS)

        # Sustained: new intervals offered at a steady SUSTAIN_RATE readings/s for SUSTAIN_S
        # seconds (20 % above the 10,000/s target): is every reading committed, at what rate (from
        # the first publish to the last commit), with what p99?
        rate = float(os.environ.get("BENCH_INGEST_SUSTAIN_RATE", 12_000))
        duration = float(os.environ.get("BENCH_INGEST_SUSTAIN_S", 20))
        count = int(rate * duration)
        paced = _messages(serials, first + 900 * INTERVALS, -(-count // METERS))[:count]
        before = Reading.objects.count()
        paced_marks: list = []
        t_paced = time.time()
        _publish(port, paced, paced_marks, rate=rate)
        deadline = time.time() + 300
        while Reading.objects.count() < before + len(paced) and time.time() < deadline:
            time.sleep(0.5)
        paced_committed = Reading.objects.count() - before
        paced_last = Reading.objects.order_by("-ingested_at").values_list("ingested_at", flat=True)[
            0
        ]
        emit(BENCH, "sustained_rate", paced_committed / (paced_last.timestamp() - t_paced),
             "readings/s", offered_rate=rate, offered=len(paced), committed=paced_committed,
             seconds=duration)  # fmt: skip
        times = dict(paced_marks)
        sent = {}
        for i, (_, body) in enumerate(paced):
            doc = json.loads(body)
            sent[(doc["serial"], doc["seq"])] = times[i - i % 1000]
        lat = sorted(
            ingested.timestamp() - sent[(serial, seq)]
            for serial, seq, ingested in Reading.objects.filter(
                interval_start__gte=datetime.fromtimestamp(first + 900 * INTERVALS, UTC)
            ).values_list("meter__serial", "seq", "ingested_at")
            if (serial, seq) in sent
        )
        if lat:
            emit(BENCH, "p99_publish_to_commit_sustained", lat[int(0.99 * (len(lat) - 1))], "s",
                 rate=rate, readings=len(lat))  # fmt: skip
            emit(BENCH, "p50_publish_to_commit_sustained", lat[len(lat) // 2], "s", rate=rate)
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
