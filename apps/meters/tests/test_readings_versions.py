"""The member pages' readings versions live in the cache; a cache that is down (a Redis restart)
must never fail the writer of readings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test import override_settings

from apps.meters.readings.rollups import rollups_mark_dirty
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.ports import free_port


@pytest.mark.django_db(transaction=True)
def test_readings_are_recorded_while_the_cache_is_down():
    meter = MeterFactory()
    hour = datetime(2026, 12, 1, 10, tzinfo=UTC)
    down = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        }
    }
    with override_settings(CACHES=down), transaction.atomic():
        rollups_mark_dirty(meter_ids=[meter.pk], hours=[hour])
    with connection.cursor() as cursor:
        cursor.execute("SELECT hour_start FROM meters_rollupdirtyhour")
        assert [row[0] for row in cursor.fetchall()] == [hour]
