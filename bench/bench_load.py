"""Load benchmark: concurrent members and staff against the production ASGI server.

Everything runs on this machine, in its own database (BENCH_LOAD_DB, the demo cooperative loaded
as `make run` loads it), its own Mosquitto on a free port and its own Redis database for Celery:
1. ingest runs throughout as in `make run`: the meter simulator (250 meters, 60× speed) publishes
   through the MQTT bridge to a Celery worker;
2. the web server starts as `make run` starts it (gunicorn + uvicorn workers, config/gunicorn.py;
   BENCH_LOAD_SERVER=daphne serves the same application with daphne instead, to compare);
3. for each scenario (BENCH_LOAD_USERS members, 50 then 200) locust runs headless on loopback for
   BENCH_LOAD_SECONDS: members log in and browse the dashboard, trading, statements and the API
   lists, BENCH_LOAD_STAFF staff log in with TOTP and browse the admin (bench/load_locustfile.py);
4. pg_stat_activity is sampled every 0.1 s during the run: peak connections of the web server
   next to its configured bound (WEB_WORKERS × DB_POOL_MAX_SIZE), and of every process.
Figures per scenario: requests/s, errors, p50/p95/p99 per page, peak connections. Before the
scenarios, bench/page_cost.py prints the CPU ms and queries of one request to each page.
BENCH_LOAD_REUSE_DB=1 keeps a database that already holds the demo (for repeated runs).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import emit

ROOT = Path(__file__).resolve().parent.parent
BENCH = "load"
DB = os.environ.get("BENCH_LOAD_DB", "es_bench_load")
REDIS_DB = os.environ.get("BENCH_LOAD_REDIS_DB", "12")
USERS = [int(u) for u in os.environ.get("BENCH_LOAD_USERS", "50,200").split(",") if u]
STAFF = int(os.environ.get("BENCH_LOAD_STAFF", 5))
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", 60))
SERVER = os.environ.get("BENCH_LOAD_SERVER", "gunicorn")
# daphne is one process; gunicorn runs WEB_WORKERS, each with its own pool.
WEB_WORKERS = 1 if SERVER == "daphne" else int(os.environ.get("WEB_WORKERS", 2))
POOL_MAX = int(os.environ.get("DB_POOL_MAX_SIZE", 8))
POOL = os.environ.get("DB_POOL", "true").lower() not in ("0", "false", "no", "off")
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = "bench-load/v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _env(**extra: str) -> dict[str, str]:
    redis = f"redis://127.0.0.1:6379/{REDIS_DB}"
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "CELERY_BROKER_URL": redis,
        "CELERY_RESULT_BACKEND": redis,
        "CACHE_KEY_PREFIX": "bench-load",
        "CHANNEL_LAYER_PREFIX": "bench-load",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "MQTT_TOPIC_PREFIX": PREFIX,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _manage(*args: str, **extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=_env(**extra), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def _prepare_database() -> float:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB]).fetchone()
        if exists and os.environ.get("BENCH_LOAD_REUSE_DB") == "1":
            return 0.0
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    t0 = time.perf_counter()
    _manage("migrate", "--noinput", "-v0")
    _manage("demo_cooperative")
    return time.perf_counter() - t0


# Staff users beside the demo's one (TOTP codes are single-use per user, so five concurrent
# staff sessions need five users); prints the accounts locust logs in with.
ACCOUNTS = """
import json
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from apps.accounts.models import Role, User
from apps.accounts.services import user_role_grant
from apps.demo import loader
staff = [loader.STAFF_EMAIL]
for n in range(1, STAFF_COUNT):
    email = f"bench-staff{n}@{loader.DEMO_DOMAIN}"
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email, loader.DEMO_PASSWORD)
        user_role_grant(user=user, role=Role.STAFF.value)
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, loader.DEMO_TOTP_SECRET)
    staff.append(email)
members = sorted(
    User.objects.filter(groups__name=Role.MEMBER.value).values_list("email", flat=True)
)
print(json.dumps({"staff": staff, "members": members, "password": loader.DEMO_PASSWORD,
                  "totp": loader.DEMO_TOTP_SECRET}))
"""


def _accounts() -> dict:
    out = _manage("shell", "-c", ACCOUNTS.replace("STAFF_COUNT", str(STAFF)))
    return json.loads(out.strip().splitlines()[-1])


class ConnectionSampler(threading.Thread):
    """Peak PostgreSQL connections to the bench database, per application_name and in all."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_web = 0
        self.peak_total = 0
        self.samples = 0

    def run(self) -> None:
        import psycopg

        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE datname = %s GROUP BY 1",
                    [DB],
                ).fetchall()
                web = sum(n for name, n in rows if name == "es-bench-web")
                self.peak_web = max(self.peak_web, web)
                self.peak_total = max(self.peak_total, sum(n for _, n in rows))
                self.samples += 1
                self.stop.wait(0.1)


def _start(
    procs: list[subprocess.Popen], args: list[str], log: str | None = None, **env: str
) -> subprocess.Popen:
    out = open(log, "a") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(args, cwd=ROOT, env=_env(**env), stdout=out, stderr=out)
    procs.append(proc)
    return proc


def _web_server(procs: list[subprocess.Popen], port: int) -> subprocess.Popen:
    env = {"DB_APPLICATION_NAME": "es-bench-web", "WEB_WORKERS": str(WEB_WORKERS)}
    if SERVER == "daphne":
        # --proxy-headers: the client address from X-Forwarded-For, as gunicorn does from loopback.
        args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                "--proxy-headers", "config.asgi:application"]  # fmt: skip
    else:
        args = [str(ROOT / ".venv/bin/gunicorn"), "-c", "config/gunicorn.py",
                "--bind", f"127.0.0.1:{port}"]  # fmt: skip
    # BENCH_LOAD_SERVER_LOG: keep the web server's log (errors) in this file.
    proc = _start(procs, args, os.environ.get("BENCH_LOAD_SERVER_LOG"), **env)
    _wait_port(port, proc)
    # The port is bound before the workers have loaded Django: wait until every worker answers.
    import urllib.error
    import urllib.request

    deadline, answered = time.time() + 180, 0
    while answered < 2 * WEB_WORKERS and time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30):
                answered += 1
        except urllib.error.HTTPError:  # 503 without the chain node: Django answered
            answered += 1
        except OSError:
            time.sleep(0.5)
    return proc


def _locust(url: str, users: int, accounts: dict, tmp: Path) -> list[dict]:
    prefix = tmp / f"locust-{users}"
    total = users + STAFF
    env = {
        **os.environ,
        "BENCH_LOAD_MEMBERS": ",".join(accounts["members"]),
        "BENCH_LOAD_STAFF": ",".join(accounts["staff"]),
        "BENCH_LOAD_STAFF_COUNT": str(STAFF),
        "BENCH_LOAD_PASSWORD": accounts["password"],
        "BENCH_LOAD_TOTP_SECRET": accounts["totp"],
    }
    log = open(f"{prefix}.log", "w")  # noqa: SIM115 - closed below
    subprocess.run(
        [str(ROOT / ".venv/bin/locust"), "-f", str(ROOT / "bench/load_locustfile.py"),
         "--headless", "--host", url, "-u", str(total), "-r", str(max(5, total // 20)),
         "-t", f"{SECONDS}s", "--stop-timeout", "10", "--csv", str(prefix), "--only-summary",
         "--loglevel", "ERROR", "--web-host", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False,
    )  # fmt: skip
    log.close()
    with open(f"{prefix}_stats.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not any(int(r["Request Count"]) for r in rows):  # show why, instead of zeros only
        print(Path(f"{prefix}.log").read_text()[-3000:], file=sys.stderr)
    return rows


def _process_tree_cpu(proc: subprocess.Popen) -> float:
    """CPU seconds (user + system) the web server's master and workers have used so far."""
    import psutil

    root = psutil.Process(proc.pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _machine_busy() -> float:
    """CPU seconds all processes of the machine have used (every core), from /proc/stat."""
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)


def _scenario(url: str, users: int, accounts: dict, tmp: Path, web: subprocess.Popen) -> None:
    import resource

    sampler = ConnectionSampler()
    sampler.start()
    load_before = os.getloadavg()[0]
    web_cpu0, busy0 = _process_tree_cpu(web), _machine_busy()
    locust0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    rows = _locust(url, users, accounts, tmp)
    elapsed = time.perf_counter() - t0
    web_cpu, busy = _process_tree_cpu(web) - web_cpu0, _machine_busy() - busy0
    locust1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    locust_cpu = (locust1.ru_utime - locust0.ru_utime) + (locust1.ru_stime - locust0.ru_stime)
    load_after = os.getloadavg()[0]
    sampler.stop.set()
    sampler.join()
    scenario = {"members": users, "staff": STAFF, "server": SERVER, "seconds": SECONDS}
    # Where the CPU went: the web server's own seconds per request, and what share of the
    # machine's cores it got while every other process (locust, ingest, other work on a shared
    # machine) used the rest. A target missed because the server got too little CPU shows here.
    cores = os.cpu_count() or 1
    served = sum(int(r["Request Count"]) for r in rows if r["Name"] == "Aggregated")
    emit(BENCH, "web_cpu_seconds", web_cpu, "s", **scenario)
    if served:
        emit(BENCH, "web_cpu_ms_per_request", 1000 * web_cpu / served, "ms", **scenario)
    emit(BENCH, "web_cpu_share", web_cpu / (elapsed * cores), "of all cores", cores=cores,
         **scenario)  # fmt: skip
    emit(BENCH, "locust_cpu_seconds", locust_cpu, "s", **scenario)
    emit(BENCH, "machine_cpu_busy_share", busy / (elapsed * cores), "of all cores",
         note="every process on the machine, this bench's and others'", **scenario)  # fmt: skip
    emit(BENCH, "load_average_1m", load_after, "runnable", before=round(load_before, 2),
         cores=cores, **scenario)  # fmt: skip
    for row in rows:
        page = f"{row['Type']} {row['Name']}".strip()
        if row["Name"] == "Aggregated":
            emit(BENCH, "requests_per_s", float(row["Requests/s"]), "1/s", **scenario)
            emit(BENCH, "requests", int(row["Request Count"]), "requests", **scenario)
            emit(BENCH, "errors", int(row["Failure Count"]), "requests", **scenario)
            page = "all"
        for pct, key in (("p50", "50%"), ("p95", "95%"), ("p99", "99%")):
            if row.get(key) not in (None, "", "N/A"):
                emit(BENCH, f"{pct}_ms", float(row[key]), "ms", page=page, **scenario)
        if row["Name"] != "Aggregated" and int(row["Failure Count"]):
            emit(BENCH, "errors", int(row["Failure Count"]), "requests", page=page, **scenario)
    failures = Path(f"{tmp / f'locust-{users}'}_failures.csv")
    if failures.exists():
        with open(failures, newline="") as f:
            for row in csv.DictReader(f):
                emit(BENCH, "failure", int(row["Occurrences"]), "requests",
                     page=f"{row['Method']} {row['Name']}", error=row["Error"][:200],
                     **scenario)  # fmt: skip
    bound = WEB_WORKERS * POOL_MAX if POOL else None
    emit(BENCH, "peak_db_connections_web", sampler.peak_web, "connections",
         bound=bound, samples=sampler.samples, **scenario)  # fmt: skip
    emit(BENCH, "peak_db_connections_all", sampler.peak_total, "connections",
         note="web, worker, bridge, simulator and this bench's sampler", **scenario)  # fmt: skip
    emit(BENCH, "scenario_seconds", elapsed, "s", **scenario)


def run() -> None:
    seconds = _prepare_database()
    if seconds:
        emit(BENCH, "demo_load_seconds", seconds, "s", note="context: migrate + demo_cooperative")
    accounts = _accounts()
    _manage("collectstatic", "--noinput", "-v0")
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    mqtt_port = _free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    procs: list[subprocess.Popen] = []
    try:
        broker = _start(procs, ["mosquitto", "-c", str(conf)])
        _wait_port(mqtt_port, broker)
        iot = {"IOT_BROKER_URL": f"mqtt://127.0.0.1:{mqtt_port}", "DB_POOL_MAX_SIZE": "2"}
        _start(procs, [sys.executable, "-m", "celery", "-A", "config", "worker",
                       "-n", f"bench-load-{os.getpid()}@%h", "-Q",
                       "default,ingest,market,chain,reports", "-c", "2", "-l", "WARNING"],
               DB_APPLICATION_NAME="es-bench-worker", **iot)  # fmt: skip
        _start(procs, [sys.executable, "manage.py", "mqtt_bridge", "--client-id",
                       f"bench-load-{os.getpid()}"],
               DB_APPLICATION_NAME="es-bench-bridge", **iot)  # fmt: skip
        _start(procs, [sys.executable, "manage.py", "simulate_meters", "--meters", "250",
                       "--speed", "60"],
               DB_APPLICATION_NAME="es-bench-simulator", **iot)  # fmt: skip
        port = _free_port()
        web = _web_server(procs, port)
        emit(BENCH, "configured_bound_web", WEB_WORKERS * POOL_MAX if POOL else 0, "connections",
             web_workers=WEB_WORKERS, pool_max_size=POOL_MAX, pool=POOL, server=SERVER)  # fmt: skip
        # CPU and queries of one request per page (test client, this database, warm cache):
        # independent of how busy the machine is, it says how many requests 2 cores can serve.
        try:
            print(_manage("shell", "-c", "from bench.page_cost import main; main()").strip(),
                  flush=True)  # fmt: skip
        except subprocess.CalledProcessError as exc:
            print(exc.stderr[-2000:], file=sys.stderr)
        for users in USERS:
            _scenario(f"http://127.0.0.1:{port}", users, accounts, tmp, web)
        alive = {" ".join(map(str, p.args[:4])): p.poll() is None for p in procs}
        emit(BENCH, "processes_alive_at_end", sum(alive.values()), "processes", of=len(alive))
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        if os.environ.get("BENCH_LOAD_REUSE_DB") != "1":
            import psycopg

            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    run()
