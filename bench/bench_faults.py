"""Fault suite (issue 17): the ingest pipeline under a steady load while its parts fail.

`make bench BENCH=faults` publishes signed readings (one per MQTT message, QoS 1, as
bench_ingest signs them) at a steady RATE readings/s and, one after the other, injects each fault
of FAULTS:

- `bridge_kill9`       kill -9 the MQTT bridge; its supervisor (here: the suite) starts it again;
- `worker_kill9`       kill -9 one of the two Celery ingest workers (its whole process group:
                       the parent and its pool child); the supervisor starts it again;
- `mosquitto_restart`  stop Mosquitto (SIGTERM, it saves its persistence file) and start it again;
- `postgres_restart`   `pg_ctl restart -m fast`;
- `redis_restart`      stop Redis (SIGTERM, it saves its RDB) and start it again;
- `bridge_sigstop`     SIGSTOP the bridge for STOP_S seconds, then SIGCONT.

Nothing of the machine's shared services is touched: the suite starts its OWN PostgreSQL cluster
(initdb + pg_ctl in a temporary directory, trust authentication, a free port), its own
redis-server and its own Mosquitto (persistence on, in the same directory), migrates a fresh
database, and runs the bridge, two ingest workers (`-c 1` each) and Celery beat (whose
`ingest_sweep` re-enqueues batches stored but never processed) as subprocesses whose
DATABASE_URL, REDIS_URL, CELERY_BROKER_URL and IOT_BROKER_URL point at those instances. Those
are what gets killed and restarted; the processes must find their way back by themselves (the
suite never restarts a process that was not the fault's target).

Each fault has a fixed slot: PRE_S seconds of steady state, the fault, then SLOT_S seconds of
observation. After the last one the suite waits until every published reading is acknowledged
by the broker and the pipeline is idle, then reads the database. Per fault (readings published
from the start of its slot to the start of the next one):

- `<fault>_published`            readings the publisher handed to its MQTT client;
- `<fault>_committed`            of those, readings stored (a current reading for (meter, start));
- `<fault>_lost`                 published readings with no stored reading (must be 0);
- `<fault>_duplicated`           (meter, interval) pairs with more than one current reading
                                 (must be 0);
- `<fault>_redelivered`          messages stored twice by the bridge and recognised by ingest as
                                 duplicates (the redelivery path at work; informative);
- `<fault>_recovery_s`           from the fault to the start of the first 5-s window whose commits
                                 reach 95 % of the pre-fault rate (the PRE_S seconds before it);
                                 0: the rate never fell below that; -1: not within the slot;
- `<fault>_stall_s`              the longest time without any commit after the fault;
- `<fault>_max_latency_s`        the longest a reading of the slot took from its first publish to
                                 its commit (a batch left to the beat sweeper shows here).

The publisher is a paho client that keeps every unacknowledged message and sends it again after a
reconnect, as a meter does; a reading counts as published once its client has it.
"""

from __future__ import annotations

import bisect
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = "faults"
FAULTS = (
    "bridge_kill9",
    "worker_kill9",
    "mosquitto_restart",
    "postgres_restart",
    "redis_restart",
    "bridge_sigstop",
)
RATE = float(os.environ.get("BENCH_FAULTS_RATE", 2000))
METERS = int(os.environ.get("BENCH_FAULTS_METERS", 10_000))
PRE_S = float(os.environ.get("BENCH_FAULTS_PRE_S", 8))
SLOT_S = float(os.environ.get("BENCH_FAULTS_SLOT_S", 30))
STOP_S = float(os.environ.get("BENCH_FAULTS_STOP_S", 20))
WARMUP_S = float(os.environ.get("BENCH_FAULTS_WARMUP_S", 10))
PREFIX = "faults/v1"
STEP = 900
WINDOW_S = 5.0
RECOVERED_SHARE = 0.95


def _say(what: str) -> None:
    """Progress on stderr (stdout carries only the figures)."""
    print(f"faults {time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise RuntimeError("pg_ctl not found (PostgreSQL server binaries are needed)")
    return Path(pg_ctl).parent


class Services:
    """Private PostgreSQL, Redis and Mosquitto on free ports, in a temporary directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pg_port = _free_port()
        self.redis_port = _free_port()
        self.mqtt_port = _free_port()
        self.redis: subprocess.Popen | None = None
        self.mqtt: subprocess.Popen | None = None
        self.pg_dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        # PostgreSQL refuses to run as root: as root, run it as the postgres user.
        self.pg_user = "postgres" if os.geteuid() == 0 else None
        if self.pg_user:
            shutil.chown(self.pg_dir, user=self.pg_user)
        self.bin = _pg_bin()

    # PostgreSQL ---------------------------------------------------------------------------------
    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.pg_dir / "data"), "-l",
             str(self.pg_dir / "log"), "-w", "-t", "60", *args],
            check=True, user=self.pg_user, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def pg_start(self) -> None:
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.pg_dir / "data"), "-U", "postgres",
             "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True, user=self.pg_user, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        with open(self.pg_dir / "data" / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.pg_port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.pg_dir}'\nmax_connections = 50\n"
                # Off while the schema is migrated (thousands of small DDL commits); turned on
                # (fsync is reloadable) before any reading arrives: `durable()`.
                "fsync = off\n"
            )
        self._pg_ctl("start")

    def durable(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as c:
            c.execute("ALTER SYSTEM SET fsync = on")
            c.execute("SELECT pg_reload_conf()")

    def pg_restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def pg_stop(self) -> None:
        self._pg_ctl("stop", "-m", "immediate")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/faults"

    # Redis --------------------------------------------------------------------------------------
    def redis_start(self) -> None:
        # A save point, so that a stop (SIGTERM) writes the RDB and a restart keeps the queues,
        # as a Redis with its default configuration does.
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "3600 1", "--appendonly", "no", "--dir", str(self.tmp),
             "--dbfilename", "faults.rdb", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(self.redis_port)

    def redis_stop(self) -> None:
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(30)

    # Mosquitto ----------------------------------------------------------------------------------
    def mqtt_start(self) -> None:
        conf = self.tmp / "mosquitto.conf"
        conf.write_text(
            f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self.tmp}/\nuser {getpass.getuser()}\n"
            "max_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n"
        )
        self.mqtt = subprocess.Popen(["mosquitto", "-c", str(conf)])
        _wait_port(self.mqtt_port)

    def mqtt_stop(self) -> None:
        if self.mqtt is not None:
            self.mqtt.terminate()  # saves the persistence file (sessions, queued messages)
            self.mqtt.wait(30)

    def start(self) -> None:
        self.pg_start()
        self.redis_start()
        self.mqtt_start()

    def stop(self) -> None:
        for stop in (self.mqtt_stop, self.redis_stop, self.pg_stop):
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - tear everything down whatever failed
                print(f"faults: stopping a private service failed: {exc}", file=sys.stderr)
        shutil.rmtree(self.pg_dir, ignore_errors=True)

    def env(self) -> dict:
        redis = f"redis://127.0.0.1:{self.redis_port}/0"
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.pg_port}/faults",
            "REDIS_URL": redis,
            "CELERY_BROKER_URL": redis,
            "CELERY_RESULT_BACKEND": redis,
            "IOT_BROKER_URL": f"mqtt://127.0.0.1:{self.mqtt_port}",
            "MQTT_TOPIC_PREFIX": PREFIX,
            "CACHE_KEY_PREFIX": "faults",
            "CHANNEL_LAYER_PREFIX": "faults",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "LOG_LEVEL": "INFO",
        }


class Pipeline:
    """The bridge, two ingest workers and beat, as subprocesses of the suite (their supervisor)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.env = services.env()
        self.logs = services.tmp
        self.bridge: subprocess.Popen | None = None
        self.workers: dict[int, subprocess.Popen] = {}
        self.beat: subprocess.Popen | None = None
        self.worker_log_offset: dict[int, int] = {}

    def _spawn(self, name: str, args: list[str], **kw) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 - the child holds it
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=self.env, stderr=log,
            start_new_session=True, **kw,
        )  # fmt: skip
        log.close()
        return proc

    def bridge_start(self, *, wait: bool = True) -> None:
        self.bridge = self._spawn(
            "bridge",
            ["manage.py", "mqtt_bridge", "--client-id", "faults-bridge", "--group", "faults",
             "--batch-ms", "250"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        ready = threading.Event()

        def drain(stream=self.bridge.stdout) -> None:
            for line in stream:  # keep the pipe empty; the readiness line is the SUBACK's
                if "subscribed" in line:
                    ready.set()

        threading.Thread(target=drain, daemon=True).start()
        self.bridge_ready = ready
        if wait:
            self.bridge_wait()

    def bridge_wait(self) -> None:
        if not self.bridge_ready.wait(90):
            raise RuntimeError(f"the bridge did not subscribe (log: {self.logs}/bridge.log)")

    def worker_start(self, k: int, *, wait: bool = True) -> None:
        log = self.logs / f"worker{k}.log"
        self.worker_log_offset[k] = log.stat().st_size if log.exists() else 0
        self.workers[k] = self._spawn(
            f"worker{k}",
            ["-m", "celery", "-A", "config", "worker", "-Q", "ingest", "-c", "1",
             "--prefetch-multiplier", "1", "-l", "INFO", "-n", f"faults-{k}-{os.getpid()}@%h"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        if wait:
            self.worker_wait(k)

    def worker_wait(self, k: int) -> None:
        log = self.logs / f"worker{k}.log"
        deadline = time.time() + 90
        while time.time() < deadline:
            with open(log, "rb") as f:
                f.seek(self.worker_log_offset[k])
                if b" ready." in f.read():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"ingest worker {k} did not start (log: {log})")

    def beat_start(self) -> None:
        self.beat = self._spawn(
            "beat",
            ["-m", "celery", "-A", "config", "beat", "-l", "INFO",
             "-s", str(self.logs / "celerybeat-schedule")],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> None:
        """Start everything at once, then wait until each is ready."""
        self.bridge_start(wait=False)
        for k in (1, 2):
            self.worker_start(k, wait=False)
        self.beat_start()
        self.bridge_wait()
        for k in (1, 2):
            self.worker_wait(k)

    def wait_ready(self) -> None:
        """Until the bridge and every worker (a restarted one too) are ready."""
        self.bridge_wait()
        for k in self.workers:
            self.worker_wait(k)

    def processes(self) -> list[subprocess.Popen]:
        return [p for p in (self.bridge, *self.workers.values(), self.beat) if p is not None]

    def stop(self) -> None:
        for proc in self.processes():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


# --- readings --------------------------------------------------------------------------------


def _serials(meters: int) -> list[str]:
    return [f"FAULT-{i:05d}" for i in range(meters)]


def seed_meters(meters: int) -> None:
    """Register the meters (run in a subprocess with Django, against the private database)."""
    from bench.common import setup_django

    setup_django()
    from datetime import UTC, datetime

    import coincurve

    from apps.demo.keys import demo_device_key
    from apps.meters.models import Meter
    from apps.meters.signing import address_from_public_key

    active = datetime(2020, 1, 1, tzinfo=UTC)
    rows = []
    for serial in _serials(meters):
        public = coincurve.PrivateKey(demo_device_key(serial)).public_key.format(compressed=False)
        rows.append(
            Meter(serial=serial, capacity_w=30_000, active_from=active, public_key=public.hex(),
                  address=address_from_public_key(public))
        )  # fmt: skip
    Meter.objects.bulk_create(rows, batch_size=2000)


def _sign(args: tuple[list[str], int, int]) -> list[tuple[int, str, int, bytes]]:
    sys.path.insert(0, str(ROOT))
    from bench.bench_ingest import STEP as INGEST_STEP
    from bench.bench_ingest import _sign_slice

    assert INGEST_STEP == STEP
    return _sign_slice(args)


def signed_readings(serials: list[str], count: int, first: int) -> list[tuple[str, int, bytes]]:
    """`count` signed readings, interval by interval over the meters: (serial, start, body)."""
    import multiprocessing

    intervals = -(-count // len(serials))
    chunks = [(serials[i : i + 500], first, intervals) for i in range(0, len(serials), 500)]
    if count > 20_000:
        with multiprocessing.get_context("fork").Pool(os.cpu_count() or 2) as pool:
            parts = pool.map(_sign, chunks)
    else:
        parts = [_sign(c) for c in chunks]
    rows = sorted(row for part in parts for row in part)
    return [(serial, start, body) for start, serial, _, body in rows[:count]]


class Publisher:
    """Publishes readings at a steady rate with QoS 1, as a meter does: it keeps each reading
    until a PUBACK with reason Success. paho sends the unacknowledged ones again after a
    reconnect; a PUBACK "No matching subscribers" (0x10: Mosquitto 2.0 does not restore shared
    subscriptions from its persistence file, so right after a broker restart, until the bridges
    have subscribed again, it drops what it receives) or a failure code sends it again later."""

    RETRY_S = 0.5

    def __init__(self, port: int, readings: list[tuple[str, int, bytes]], rate: float) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.readings = readings
        self.rate = rate
        self.sent = 0  # readings handed to the client at least once
        self.sent_at: list[float] = []
        self.acked = 0  # readings with a PUBACK Success
        self.retried = 0  # PUBACKs that did not accept the reading (sent again)
        self.stop_event = threading.Event()
        self.finish = threading.Event()
        # The network thread only appends (mid, accepted) here: it calls on_publish holding
        # paho's own lock, which the publishing thread needs to publish.
        self.events: deque[tuple[int, bool]] = deque()
        self.in_flight: dict[int, deque[int]] = defaultdict(deque)  # mid → reading indices
        self.retry: deque[tuple[float, int]] = deque()  # (not before, reading index)
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"faults-pub-{os.getpid()}", protocol=paho.MQTTv5,
        )  # fmt: skip
        self.client.max_inflight_messages_set(2000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_publish = self._on_publish
        self.port = port
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.events.append((mid, reason_code.value == 0))

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        self.started = time.time()
        self.thread.start()

    def _send(self, i: int) -> None:
        from paho.mqtt.enums import MQTTErrorCode

        serial, _, body = self.readings[i]
        topic = f"{PREFIX}/meters/{serial}/readings"
        queued = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)
        while True:
            # NO_CONN: paho keeps the message and sends it once connected again. Anything else
            # (its 65,535 packet ids all in use): the meter keeps the reading and tries again.
            info = self.client.publish(topic, body, qos=1)
            if info.rc in queued:
                self.in_flight[info.mid].append(i)
                return
            self._settle()
            time.sleep(0.05)

    def _settle(self) -> None:
        """Account for the PUBACKs received so far (in order, so a reused mid is no trouble)."""
        while self.events:
            mid, accepted = self.events.popleft()
            i = self.in_flight[mid].popleft()
            if accepted:
                self.acked += 1
            else:
                self.retried += 1
                self.retry.append((time.time() + self.RETRY_S, i))

    def _resend_due(self) -> None:
        while self.retry and self.retry[0][0] <= time.time():
            self._send(self.retry.popleft()[1])

    def _run(self) -> None:
        for i in range(len(self.readings)):
            if self.stop_event.is_set():
                break
            self._settle()
            self._resend_due()
            time.sleep(max(0.0, self.started + i / self.rate - time.time()))
            self._send(i)
            self.sent_at.append(time.time())
            self.sent = i + 1
        while not self.stop_event.is_set() or self.acked < self.sent:
            if self.finish.is_set():
                return
            self._settle()
            self._resend_due()
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop offering new readings (the ones already offered are still sent until acked)."""
        self.stop_event.set()

    def wait_acked(self, timeout: float) -> bool:
        deadline = time.time() + timeout
        while self.acked < self.sent and time.time() < deadline:
            time.sleep(0.2)
        return self.acked >= self.sent

    def close(self) -> None:
        self.finish.set()
        self.thread.join(5)
        self.client.loop_stop()
        self.client.disconnect()


# --- faults ----------------------------------------------------------------------------------


def _inject(name: str, services: Services, pipeline: Pipeline, *, stop_s: float) -> None:
    """Inject one fault; a killed process is started again by its supervisor (us) at once,
    without waiting for it to be ready (its start-up time is part of the recovery)."""
    if name == "bridge_kill9":
        assert pipeline.bridge is not None
        os.kill(pipeline.bridge.pid, signal.SIGKILL)
        pipeline.bridge.wait(10)
        pipeline.bridge_start(wait=False)
    elif name == "worker_kill9":
        worker = pipeline.workers[1]
        os.killpg(worker.pid, signal.SIGKILL)  # the worker's parent and its pool child
        worker.wait(10)
        pipeline.worker_start(1, wait=False)
    elif name == "mosquitto_restart":
        services.mqtt_stop()
        services.mqtt_start()
    elif name == "postgres_restart":
        services.pg_restart()
    elif name == "redis_restart":
        services.redis_stop()
        services.redis_start()
    elif name == "bridge_sigstop":
        assert pipeline.bridge is not None
        os.kill(pipeline.bridge.pid, signal.SIGSTOP)
        time.sleep(stop_s)
        os.kill(pipeline.bridge.pid, signal.SIGCONT)
    else:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")


@dataclass
class FaultResult:
    name: str
    at: float  # wall time the fault was injected
    slot_start: float
    slot_end: float = 0.0
    published: int = 0
    committed: int = 0
    lost: int = 0
    duplicated: int = 0
    redelivered: int = 0
    pre_rate: float = 0.0
    recovery_s: float = -1.0
    stall_s: float = 0.0
    max_latency_s: float = 0.0
    lost_examples: list = field(default_factory=list)

    def figures(self) -> list[tuple[str, float, str]]:
        return [
            ("published", self.published, "readings"),
            ("committed", self.committed, "readings"),
            ("lost", self.lost, "readings"),
            ("duplicated", self.duplicated, "readings"),
            ("redelivered", self.redelivered, "messages"),
            ("pre_fault_rate", self.pre_rate, "readings/s"),
            ("recovery_s", self.recovery_s, "s"),
            ("stall_s", self.stall_s, "s"),
            ("max_latency_s", self.max_latency_s, "s"),
        ]


def _idle(dsn: str) -> tuple[int, int]:
    """(pending raw batches, readings stored) in the private database."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=5) as c:
        pending = c.execute("SELECT count(*) FROM meters_rawbatch WHERE status = 'pending'")
        n_pending = pending.fetchone()[0]
        n_readings = c.execute("SELECT count(*) FROM meters_reading WHERE is_current").fetchone()[0]
    return n_pending, n_readings


def _wait_drained(dsn: str, published: int, timeout: float) -> None:
    """Until every published reading is stored and nothing is pending (or `timeout`)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            pending, stored = _idle(dsn)
        except Exception:  # noqa: BLE001 - the database may be restarting; ask again
            pending, stored = 1, 0
        if pending == 0 and stored >= published:
            return
        time.sleep(1)


def _analyse(
    dsn: str,
    readings: list,
    publisher: Publisher,
    results: list[FaultResult],
    *,
    pre_s: float,
    rate: float,
) -> None:
    from datetime import UTC, datetime

    import psycopg

    with psycopg.connect(dsn) as c:
        ids = dict(c.execute("SELECT serial, id FROM meters_meter").fetchall())
        current: dict[tuple[int, int], int] = {}
        committed_at: dict[tuple[int, int], float] = {}
        commits: list[float] = []
        for meter_id, start, ingested in c.execute(
            "SELECT meter_id, extract(epoch FROM interval_start)::bigint,"
            " extract(epoch FROM ingested_at)::float8 FROM meters_reading WHERE is_current"
        ):
            key = (meter_id, start)
            current[key] = current.get(key, 0) + 1
            committed_at[key] = ingested
            commits.append(ingested)
        batches = c.execute(
            "SELECT extract(epoch FROM received_at)::float8, duplicates FROM meters_rawbatch"
        ).fetchall()
    commits.sort()

    def committed_between(a: float, b: float) -> int:
        return bisect.bisect_left(commits, b) - bisect.bisect_left(commits, a)

    sent_at = publisher.sent_at
    for r in results:
        lo = bisect.bisect_left(sent_at, r.slot_start)
        hi = bisect.bisect_left(sent_at, r.slot_end)
        r.published = hi - lo
        for i, (serial, start, _) in enumerate(readings[lo:hi], start=lo):
            key = (ids[serial], start)
            n = current.get(key, 0)
            if n:
                r.committed += 1
                r.max_latency_s = max(r.max_latency_s, committed_at[key] - sent_at[i])
            else:
                r.lost += 1
                if len(r.lost_examples) < 5:
                    r.lost_examples.append((serial, datetime.fromtimestamp(start, UTC).isoformat()))
            if n > 1:
                r.duplicated += 1
        r.redelivered = sum(d for at, d in batches if r.slot_start <= at < r.slot_end)
        # At most the offered rate: a backlog of the previous fault still draining in the window
        # must not raise the bar.
        r.pre_rate = min(committed_between(r.at - pre_s, r.at) / pre_s, rate)
        t, end = r.at, r.slot_end
        while t + WINDOW_S <= end:
            if committed_between(t, t + WINDOW_S) >= RECOVERED_SHARE * r.pre_rate * WINDOW_S:
                r.recovery_s = t - r.at
                break
            t += 0.5
        after = [r.at] + commits[bisect.bisect_left(commits, r.at) : bisect.bisect_left(
            commits, end)] + [end]  # fmt: skip
        r.stall_s = max(b - a for a, b in zip(after, after[1:], strict=False))


def run_suite(
    *,
    rate: float = RATE,
    meters: int = METERS,
    faults: tuple[str, ...] | list[str] = FAULTS,
    warmup_s: float = WARMUP_S,
    pre_s: float = PRE_S,
    slot_s: float = SLOT_S,
    stop_s: float = STOP_S,
    drain_s: float = 150,
    margin_s: float = 30,
    keep_logs: bool = False,
) -> list[FaultResult]:
    """Run the faults one after the other under a steady `rate`; the per-fault results."""
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
    # margin_s: for restarts that outlast their slot (the next slot waits for them)
    duration = warmup_s + len(faults) * (pre_s + slot_s) + margin_s
    serials = _serials(meters)
    now = int(time.time())
    first = now - now % 86400 - 3 * 86400  # three days ago: every interval has ended
    _say(f"signing {int(rate * duration)} readings")
    readings = signed_readings(serials, int(rate * duration), first)
    _say("starting private PostgreSQL, Redis, Mosquitto")

    tmp = Path(tempfile.mkdtemp(prefix="faults-"))
    services = Services(tmp)
    pipeline = Pipeline(services)
    publisher: Publisher | None = None
    results: list[FaultResult] = []
    try:
        services.start()
        import psycopg

        with psycopg.connect(services.dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE faults")
        env = services.env()
        _say("migrating")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
        subprocess.run(
            [sys.executable, "-c",
             f"import bench.bench_faults as m; m.seed_meters({meters})"],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
        services.durable()
        _say("starting the bridge, two ingest workers and beat")
        pipeline.start()
        _say(f"publishing {rate:g} readings/s")
        publisher = Publisher(services.mqtt_port, readings, rate)
        publisher.start()
        time.sleep(warmup_s)
        for name in faults:
            slot_start = time.time()
            if results:
                results[-1].slot_end = slot_start
            time.sleep(pre_s)
            result = FaultResult(name=name, at=time.time(), slot_start=slot_start)
            results.append(result)
            _say(f"fault: {name}")
            _inject(name, services, pipeline, stop_s=stop_s)
            _say(f"fault injected: {name}")
            time.sleep(max(0.0, result.at + slot_s - time.time()))
            pipeline.wait_ready()  # the next fault never meets a restart still under way
        results[-1].slot_end = time.time()
        if publisher.sent == len(readings):
            _say("the publisher ran out of signed readings before the end (slots are short)")
        publisher.stop()
        _say("waiting until every reading is acknowledged and stored")
        if not publisher.wait_acked(120):
            print(f"faults: {publisher.sent - publisher.acked} readings never acknowledged",
                  file=sys.stderr)  # fmt: skip
        _wait_drained(services.dsn, publisher.sent, drain_s)
        _analyse(services.dsn, readings, publisher, results, pre_s=pre_s, rate=rate)
        return results
    finally:
        if publisher is not None:
            publisher.close()
        pipeline.stop()
        services.stop()
        if keep_logs:
            print(f"faults: logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.common import emit

    faults = [f for f in os.environ.get("BENCH_FAULTS", ",".join(FAULTS)).split(",") if f]
    started = time.time()
    results = run_suite(faults=faults, keep_logs=bool(os.environ.get("BENCH_FAULTS_KEEP_LOGS")))
    emit(BENCH, "offered_rate", RATE, "readings/s", meters=METERS, pre_s=PRE_S, slot_s=SLOT_S)
    for r in results:
        for metric, value, unit in r.figures():
            emit(BENCH, f"{r.name}_{metric}", value, unit)
        if r.lost_examples:
            print(f"faults: {r.name} lost e.g. {r.lost_examples}", file=sys.stderr)
    emit(BENCH, "suite_duration_s", time.time() - started, "s")


if __name__ == "__main__":
    run()
