from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db
Q = timedelta(minutes=15)


def _backfill(meter, start, count, imp, exp):
    readings_backfill(
        rows=[
            BackfillRow(
                meter_id=meter.pk,
                interval_start=start + i * Q,
                import_wh=imp,
                export_wh=exp,
                private_key=None,
            )
            for i in range(count)
        ],
        source="backfill",
    )


def test_dashboard_shows_the_members_own_totals_and_chart_data(member_client, member):
    mine = MeterFactory(member=member)
    theirs = MeterFactory()
    start = (timezone.now() - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    _backfill(mine, start, 96, imp=250, exp=100)  # one full day: 24 kWh in, 9.6 kWh out
    _backfill(theirs, start, 96, imp=9_999, exp=0)

    response = member_client.get(reverse("portal:dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="week-import">24.00' in html
    assert 'id="week-export">9.60' in html
    chart = response.context["data"]["chart"]
    assert len(chart["week"]) == 24  # hourly points
    assert {p["import_wh"] for p in chart["week"]} == {1000}  # 4 x 250 Wh, never 9 999
    assert 'id="dashboard-data"' in html
    assert "vendor/chart.umd.min.js" in html
    assert 'id="live-balance"' in html


def test_dashboard_without_readings_says_so(member_client):
    response = member_client.get(reverse("portal:dashboard"))
    assert response.status_code == 200
    assert b"No readings for your meters in the last 7 days" in response.content
    assert b"chart.umd.min.js" not in response.content


def test_dashboard_of_an_account_without_membership(staff_client):
    response = staff_client.get(reverse("portal:dashboard"))
    assert response.status_code == 200
    assert b"no membership" in response.content


# user, role, member, the member's meters (their readings version), the week's intervals, the
# latest reading, site energy, contracts, sites, inbox
DASHBOARD_QUERIES = 10
# the same with the member's readings cached for their version: no reading query
DASHBOARD_QUERIES_CACHED = 7


def test_dashboard_queries_do_not_grow_with_meters_or_readings(member_client, member):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.meters.tests.factories import reading_table_queries, readings_landed

    start = (timezone.now() - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    first = MeterFactory(member=member)
    _backfill(first, start, 8, imp=250, exp=0)
    member_client.get(reverse("portal:dashboard"))  # once-per-session reads out of the way
    readings_landed(meter_ids=[first.pk])  # as if new data had landed: nothing cached
    with CaptureQueriesContext(connection) as few:
        member_client.get(reverse("portal:dashboard"))
    with CaptureQueriesContext(connection) as cached:
        member_client.get(reverse("portal:dashboard"))
    for _ in range(3):
        _backfill(MeterFactory(member=member), start, 96, imp=250, exp=100)
    with CaptureQueriesContext(connection) as many:
        response = member_client.get(reverse("portal:dashboard"))
    assert 'id="week-import">74.00' in response.content.decode()  # 2 kWh + 3 x 24 kWh
    assert len(many) == len(few) <= DASHBOARD_QUERIES, [q["sql"][:60] for q in many]
    assert len(cached) == DASHBOARD_QUERIES_CACHED, [q["sql"][:60] for q in cached]
    assert not reading_table_queries(cached)
