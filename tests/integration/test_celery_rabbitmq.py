"""Celery on RabbitMQ, the production broker for several machines (docs/scaling in README
"Deployment"): a real worker process, started on an AMQP broker, consumes an ingest batch and
commits its reading; the result comes back through Redis as in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings

from apps.meters.readings.pipeline import raw_batch_store
from apps.meters.tests.factories import MeterFactory, current_readings
from tests.fixtures.mqtt import Publisher

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
T0 = (int(time.time()) // 86400 - 2) * 86400


def test_a_worker_on_rabbitmq_ingests_a_batch():
    meter = MeterFactory()
    message = json.dumps(Publisher.reading(meter, T0, 5)).encode()
    batch = raw_batch_store(messages=[("t", message)])  # committed: the worker sees it
    queue = f"test-ingest-{uuid.uuid4().hex[:10]}"
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": AMQP_URL,
        "CELERY_RESULT_BACKEND": settings.REDIS_URL,
    }
    worker = subprocess.Popen(  # noqa: S603 - our own worker
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "warning",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    sender = Celery("test-sender", broker=AMQP_URL, backend=settings.REDIS_URL)
    sender.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    try:
        result = sender.send_task("apps.meters.tasks.ingest_batch", args=[batch], queue=queue)
        assert result.get(timeout=120) == {"batch": batch, "accepted": 1, "rejected": 0}
    finally:
        worker.terminate()
        output = worker.communicate(timeout=60)[0].decode(errors="replace")
    assert worker.returncode is not None, output
    assert current_readings(meter=meter).count() == 1
    assert "amqp" in sender.connection().as_uri()
