"""The member dashboard reads the member's readings from the read replica (apps/core/replica.py;
the test settings make `replica` a TEST MIRROR of default, a second connection to the same test
database), and the logged-in user from the primary."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from apps.meters.tests.factories import MeterFactory, messages_ingest
from tests.fixtures.mqtt import Publisher

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

NOW = int(time.time())
EARLIER = (NOW // 900 - 2) * 900  # an interval that ended half an hour ago at the latest


def _reading_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "meters_reading" in q["sql"]]


def test_the_replica_is_a_second_connection_to_the_same_database():
    answers = []
    for alias in ("default", "replica"):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid(), current_database()")
            answers.append(cursor.fetchone())
    (default_pid, default_db), (replica_pid, replica_db) = answers
    assert replica_db == default_db
    assert replica_pid != default_pid


def test_a_members_dashboard_reads_their_readings_from_the_replica(client):
    meter = MeterFactory(member_since=datetime(2020, 1, 1, tzinfo=UTC))
    message = json.dumps(Publisher.reading(meter, EARLIER, 1234)).encode()
    result = messages_ingest([("t", message)])
    assert result.accepted == 1
    client.force_login(meter.member.user)
    with (
        CaptureQueriesContext(connections["replica"]) as on_replica,
        CaptureQueriesContext(connections["default"]) as on_default,
    ):
        response = client.get("/")
    assert response.status_code == 200
    assert "1.23" in response.content.decode()  # 1,234 Wh read through the replica
    # the week's intervals (today's among them), the latest reading, the per-site figures
    assert len(_reading_queries(on_replica)) == 3
    assert _reading_queries(on_default) == []
    # The logged-in user was read from the primary (the viewer may just have logged in).
    assert any('FROM "accounts_user"' in q["sql"] for q in on_default.captured_queries)
    assert not any('FROM "accounts_user"' in q["sql"] for q in on_replica.captured_queries)
