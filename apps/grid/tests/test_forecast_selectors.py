"""Forecast selectors other modules read (dispatch, stability, market's automatic orders)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.grid.models import Forecast
from apps.grid.selectors import forecast_values, forecast_values_at

pytestmark = pytest.mark.django_db

DAY0 = datetime(2026, 6, 10, tzinfo=UTC)
Q = timedelta(minutes=15)


def _forecast(key: str, start: datetime, values: list[int], issued: datetime) -> Forecast:
    return Forecast.objects.create(
        series_key=key, kind="load", method="test", start=start, values_wh=values, issued_at=issued
    )


def test_forecast_values_stitch_the_latest_issue_of_each_day(django_assert_num_queries):
    _forecast("transformer:1:load", DAY0, [1] * 96, issued=DAY0 - timedelta(hours=12))
    newer = _forecast("transformer:1:load", DAY0, [2] * 96, issued=DAY0 - timedelta(hours=6))
    next_day = _forecast("transformer:1:load", DAY0 + timedelta(days=1), [3] * 96, issued=DAY0)

    with django_assert_num_queries(1):
        values, used = forecast_values(
            series_key="transformer:1:load", start=DAY0 + 94 * Q, intervals=4
        )

    assert list(values) == [2, 2, 3, 3]
    assert used == [newer.pk, next_day.pk]


def test_forecast_values_at_take_the_latest_issue_that_covers_the_interval(
    django_assert_num_queries,
):
    at = DAY0 + 10 * Q
    _forecast("meter:A:load", DAY0, [5] * 96, issued=DAY0 - timedelta(hours=12))
    _forecast("meter:A:load", DAY0 + 20 * Q, [9] * 4, issued=DAY0)  # starts after `at`
    _forecast("meter:B:pv", DAY0, [7] * 8, issued=DAY0 - timedelta(hours=1))  # too short
    _forecast("meter:B:pv", DAY0, [4] * 96, issued=DAY0 - timedelta(hours=2))

    with django_assert_num_queries(1):
        latest = forecast_values_at(
            series_keys=["meter:A:load", "meter:B:pv", "meter:C:load"], at=at
        )

    assert latest == {"meter:A:load": 5, "meter:B:pv": 4}
