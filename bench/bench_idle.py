"""Idle cost of the whole `make run` stack: CPU used by its processes while nobody uses it.

`make bench BENCH=idle` starts the stack exactly as `make run` does (scripts/run.sh) in a
throwaway database with its own ports, cache/channel/MQTT prefixes and state directory, waits
until it answers and the warm-up is over (the demo extras are loaded, the chain outbox has sent
and confirmed everything they queued — minutes of work for the demo's certificates and claims —
and the grid worker has issued the first forecasts), then measures for IDLE_SECONDS (default
300) and stops everything. The open outbox rows before and after the window are reported.
With IDLE_STACK_PID=<pid of a running `make run`/scripts/run.sh> it measures that stack instead
(IDLE_STACK_VAR: its state directory, default var; the database is DATABASE_URL's).

What is counted: CPU seconds (user + system) of every process of the stack — run.sh, honcho and
everything it started (gunicorn master and workers, Celery workers with their pool processes,
beat, MQTT bridge, command-ack listener, meter simulator, OCPP server and charger simulator,
OpenADR VTN and VEN simulator) — plus the anvil node and the PostgreSQL backends connected to the
stack's database. Not counted: the shared Redis, Mosquitto and PostgreSQL server processes (their
share cannot be told apart from other users of the machine). Figure: CPU seconds / wall seconds
× 100, in percent of one core; a per-process breakdown follows.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

from bench.common import emit

BENCH = "idle"
ROOT = Path(__file__).resolve().parent.parent


def _db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/").split("?")[0]


def _admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def _psql(admin_url: str, sql: str) -> str:
    done = subprocess.run(
        ["psql", admin_url, "-tAc", sql], capture_output=True, text=True, check=True
    )
    return done.stdout


def _label(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
        env_name = ""
        for part in cmd:
            if part.startswith("DB_APPLICATION_NAME="):
                env_name = part.split("=", 1)[1]
        text = " ".join(cmd)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "?"
    for key, name in (
        ("gunicorn", "web"), ("-Q grid ", "gridworker"), ("celery -A config worker", "worker"),
        ("celery -A config beat", "beat"), ("mqtt_bridge", "bridge"),
        ("grid_command_acks", "acks"), ("simulate_meters", "simulator"),
        ("ocpp_charger_simulator", "chargers"), ("ocpp_server", "ocpp"),
        ("openadr_ven_simulator", "vens"), ("openadr_vtn", "vtn"), ("anvil", "anvil"),
        ("honcho", "honcho"), ("demo_cooperative", "demo-loader"),
        ("chain_multisig", "demo-loader"), ("run.sh", "run.sh"),
    ):  # fmt: skip
        if key in text:
            return name
    return env_name or (cmd[0].rsplit("/", 1)[-1] if cmd else "?")


class Stack:
    """The processes of one running stack, found afresh at every sample."""

    def __init__(self, root_pid: int, var_dir: Path, database_url: str):
        self.root_pid = root_pid
        self.var_dir = var_dir
        self.db = _db_name(database_url)
        self.admin_url = _admin_url(database_url)

    def processes(self) -> dict[int, tuple[str, psutil.Process]]:
        found: dict[int, tuple[str, psutil.Process]] = {}
        try:
            root = psutil.Process(self.root_pid)
            for p in [root, *root.children(recursive=True)]:
                found[p.pid] = (_label(p), p)
        except psutil.NoSuchProcess:
            pass
        pid_file = self.var_dir / "anvil" / "anvil.pid"
        if pid_file.exists():
            try:
                anvil = psutil.Process(int(pid_file.read_text()))
                for p in [anvil, *anvil.children(recursive=True)]:
                    found[p.pid] = ("anvil", p)
            except (psutil.NoSuchProcess, ValueError):
                pass
        if not self.db.replace("_", "").isalnum():
            raise ValueError(f"unexpected database name {self.db!r}")
        pids = _psql(
            self.admin_url,
            f"SELECT pid, application_name FROM pg_stat_activity WHERE datname = '{self.db}'",  # noqa: S608 - checked above
        )
        for line in pids.splitlines():
            if "|" not in line:
                continue
            pid, app = line.split("|", 1)
            with contextlib.suppress(psutil.NoSuchProcess):
                found[int(pid)] = (f"postgres:{app or '?'}", psutil.Process(int(pid)))
        return found

    def cpu_seconds(self, previous: dict[int, float]) -> tuple[dict[str, float], dict[int, float]]:
        """CPU seconds per label since `previous` (pid -> cpu seconds at the last sample); a
        process that appeared meanwhile counts from zero, one that ended keeps its last sample."""
        by_label: dict[str, float] = defaultdict(float)
        now: dict[int, float] = {}
        for pid, (label, proc) in self.processes().items():
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total = t.user + t.system
            now[pid] = total
            by_label[label] += total - previous.get(pid, 0.0)
        return by_label, now


def measure(stack: Stack, seconds: float, step: float = 5.0) -> tuple[float, dict[str, float]]:
    """Sample every `step` seconds (short-lived processes are caught between samples)."""
    totals: dict[str, float] = defaultdict(float)
    _, last = stack.cpu_seconds({})
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        time.sleep(min(step, max(0.0, seconds - (time.monotonic() - t0))))
        delta, sample = stack.cpu_seconds(last)
        for label, value in delta.items():
            totals[label] += value
        last.update(sample)
    return time.monotonic() - t0, dict(totals)


def _outbox_open(stack: Stack) -> int:
    """Chain outbox rows not yet confirmed or failed (pending, signed, sent or mined)."""
    out = _psql(
        urlunsplit(urlsplit(stack.admin_url)._replace(path="/" + stack.db)),
        "SELECT count(*) FROM chain_chainintent"
        " WHERE status IN ('pending', 'signed', 'sent', 'mined')",
    )
    return int(out.strip() or 0)


def _grid_busy(stack: Stack, seconds: float = 30.0) -> float:
    """Percent of a core the grid worker used over `seconds` (forecasts still being issued)."""
    wall, totals = measure(stack, seconds)
    return 100 * totals.get("gridworker", 0.0) / wall


def _report(wall: float, totals: dict[str, float], **extra: object) -> None:
    load = os.getloadavg()
    emit(BENCH, "idle_cpu_percent_of_core", 100 * sum(totals.values()) / wall, "%",
         seconds=round(wall), cpu_seconds=round(sum(totals.values()), 1),
         load_average=[round(x, 1) for x in load], **extra)  # fmt: skip
    for label, value in sorted(totals.items(), key=lambda kv: -kv[1]):
        if value >= 0.05:
            emit(BENCH, f"idle_cpu_percent_of_core[{label}]", 100 * value / wall, "%")


def run() -> None:
    seconds = float(os.environ.get("IDLE_SECONDS", "300"))
    if os.environ.get("IDLE_STACK_PID"):
        stack = Stack(
            int(os.environ["IDLE_STACK_PID"]),
            Path(os.environ.get("IDLE_STACK_VAR", "var")),
            os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/energysphere"),
        )
        open_before = _outbox_open(stack)
        wall, totals = measure(stack, seconds)
        _report(wall, totals, stack="running", outbox_open_before=open_before,
                outbox_open_after=_outbox_open(stack))  # fmt: skip
        return

    from tests.fixtures.stack import RunStack

    run_stack = RunStack("bench-idle")
    run_stack.env.pop("WEB_WORKERS", None)  # as `make run`: the default number of web workers
    warmup_max = float(os.environ.get("IDLE_WARMUP_MAX", "1800"))
    try:
        run_stack.start()
        answered = run_stack.wait_answering()
        emit(BENCH, "make_run_answers_after", answered, "s")
        assert run_stack.process is not None
        stack = Stack(run_stack.process.pid, run_stack.var_dir, run_stack.database_url)
        # Warm-up: the demo extras are loaded, the chain outbox has sent and confirmed what they
        # queued (the demo's certificates, claims, anchors) and the grid worker has issued the
        # first forecasts (it is below 5 % of a core over 30 s).
        t0 = time.monotonic()
        warm = False
        while time.monotonic() - t0 < warmup_max:
            if run_stack.hooks_done() and _outbox_open(stack) == 0 and _grid_busy(stack) < 5.0:
                warm = True
                break
            time.sleep(5)
        open_before = _outbox_open(stack)
        emit(BENCH, "idle_warmup_seconds", time.monotonic() - t0, "s", warm=warm,
             outbox_open=open_before)  # fmt: skip
        wall, totals = measure(stack, seconds)
        _report(wall, totals, stack="fresh", warm=warm, outbox_open_before=open_before,
                outbox_open_after=_outbox_open(stack))  # fmt: skip
    finally:
        run_stack.stop()
