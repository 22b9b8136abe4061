"""Grid reads meter readings only through `apps.meters.selectors`, in as few queries as before
(the counts were measured on the code that queried the reading table itself)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.grid.selectors import community_actual_wh
from apps.grid.services.forecasts import series_history_wh
from apps.grid.tests.factories import ConnectionPointFactory, TransformerFactory
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 19, 18, 0, tzinfo=UTC)
Q = timedelta(minutes=15)


@pytest.fixture
def two_transformers():
    """Two meters on transformer A (same feeder as B), one on transformer B, one unconnected."""
    a = TransformerFactory()
    b = TransformerFactory(feeder=a.feeder)
    on_a = [MeterFactory(connection_point=ConnectionPointFactory(transformer=a)) for _ in range(2)]
    on_b = MeterFactory(connection_point=ConnectionPointFactory(transformer=b))
    loose = MeterFactory()
    rows = []
    for k in range(4):
        for n, meter in enumerate([*on_a, on_b, loose]):
            rows.append(BackfillRow(meter_id=meter.pk, interval_start=T0 + k * Q,
                                    import_wh=100 * (n + 1) + k, export_wh=n))  # fmt: skip
    readings_backfill(rows=rows)
    return a, b, on_a, on_b


def test_history_of_every_series_scope_is_one_query(
    two_transformers, django_assert_max_num_queries
):
    a, b, on_a, on_b = two_transformers
    end = T0 + 4 * Q
    with django_assert_max_num_queries(1):  # before: 1
        meter = series_history_wh(series_key=f"meter:{on_b.serial}:load", start=T0, end=end)
    with django_assert_max_num_queries(1):  # before: 1
        trafo = series_history_wh(series_key=f"transformer:{a.pk}:load", start=T0, end=end)
    with django_assert_max_num_queries(1):  # before: 1
        feeder = series_history_wh(series_key=f"feeder:{a.feeder_id}:pv", start=T0, end=end)
    with django_assert_max_num_queries(1):  # before: 1
        community = series_history_wh(series_key="community:load", start=T0, end=end)
    assert list(meter) == [300.0, 301.0, 302.0, 303.0]
    assert list(trafo) == [300.0, 302.0, 304.0, 306.0]
    assert list(feeder) == [3.0] * 4  # export of the three connected meters (0 + 1 + 2)
    assert list(community) == [1000.0, 1004.0, 1008.0, 1012.0]
    assert meter.index[0] == T0


def test_community_actual_is_one_query(two_transformers, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):  # before: 1
        actual = community_actual_wh(start=T0, end=T0 + 2 * Q)
    assert actual == {T0: (1000, 6), T0 + Q: (1004, 6)}
