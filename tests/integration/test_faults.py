"""Issue 17, the fault suite at small scale: the real pipeline (bridge, two Celery ingest
workers, beat) against private PostgreSQL, Redis and Mosquitto instances that the suite kills and
restarts (bench/bench_faults.py; the shared services of the machine are never touched).

At 100 readings/s: kill -9 of the bridge, a restart of the broker, of PostgreSQL and of Redis.
Every published reading must be stored once, and after a database or Redis restart no reading
may wait for the beat sweeper (30-60 s): the ingest task retries a lost database connection
and the bridge hands over again a batch it could not enqueue."""

from __future__ import annotations

import pytest

from bench.bench_faults import run_suite

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.long]

FAULTS = ["bridge_kill9", "mosquitto_restart", "postgres_restart", "redis_restart"]


def test_faults_lose_and_duplicate_nothing():
    results = run_suite(
        rate=100, meters=100, faults=FAULTS, warmup_s=2, pre_s=3, slot_s=8, drain_s=120,
        margin_s=120,  # a killed bridge takes tens of seconds to start on a loaded machine
    )  # fmt: skip
    assert [r.name for r in results] == FAULTS
    for r in results:
        # 100 readings/s all through the fault's slot (3 s before the fault, 8 s after), all
        # stored once
        assert r.published >= 0.9 * 100 * 11, r
        assert (r.lost, r.duplicated) == (0, 0), (r.name, r.lost_examples)
        assert r.committed == r.published, r
        assert r.pre_rate > 50, r  # the pipeline was flowing before the fault
    by_name = {r.name: r for r in results}
    # A broker restart makes the broker redeliver what the bridge had not acknowledged, or the
    # publisher resend what had no subscriber yet: in either case nothing is missing above.
    for name in ("postgres_restart", "redis_restart"):
        assert by_name[name].max_latency_s < 25, by_name[name]
