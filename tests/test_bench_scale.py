"""The scale bench's generator and one of its figures at a tiny size (20 meters, one day), so
`make bench BENCH=scale` cannot rot between runs: what it loads is what the member pages show."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from bench import bench_scale, scale_data

pytestmark = pytest.mark.django_db


def test_generated_readings_reach_the_member_pages(capsys):
    from apps.accounts.models import Member

    end = scale_data.interval_floor(datetime.now(tz=UTC))
    coop = scale_data.cooperative_create(meters=20, end=end, horizon_days=1)
    assert len(coop.meters) == 20
    written = scale_data.readings_copy(coop, end - timedelta(days=1), end)
    assert written == 20 * 96
    assert scale_data.rollups_build_bulk(end - timedelta(days=1), end) >= 1

    # Stored as ingest stores them: one current version per interval, registers increasing.
    meter = coop.meters[0]
    imp, _ = scale_data.meter_series(coop, meter)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sum(import_wh), count(*), bool_and(is_current), "
            "max(register_import_wh) - min(register_import_wh) "
            "FROM meters_reading WHERE meter_id = %s",
            [meter.meter_id],
        )
        total, count, current, register_growth = cursor.fetchone()
        assert (total, count, current) == (int(imp.sum()), 96, True)
        assert register_growth == int(imp[1:].sum())
        # The portal's hourly rollups hold the same energy.
        cursor.execute(
            "SELECT sum(import_wh) FROM meters_meterrollup "
            "WHERE meter_id = %s AND granularity = 'hour'",
            [meter.meter_id],
        )
        assert cursor.fetchone()[0] == total

    # One figure through the real views: every sampled member's dashboard and meter page answer.
    members = list(Member.objects.filter(pk__in=coop.member_ids[:3]).select_related("user"))
    figures = bench_scale.Figures()
    figures.readings = written
    bench_scale.member_pages(figures, coop, members)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    metrics = {line["metric"]: line for line in lines}
    for page in ("dashboard", "meter_detail"):
        for state in ("cold", "warm"):
            figure = metrics[f"member_{page}_{state}_p95_ms"]
            assert figure["value"] > 0
            assert figure["readings"] == written


def test_bulk_rollups_equal_the_incremental_refresh():
    """The bench rolls its bulk-loaded history up set-based; portal pages, settlement and reports
    read those rollups, so they must be what `rollups_refresh` computes — also across the seam
    between two loads (the later days first, then the days before them, as the bench loads)."""
    end = scale_data.interval_floor(datetime.now(tz=UTC)).replace(minute=30)
    coop = scale_data.cooperative_create(meters=12, end=end, horizon_days=2)
    seam = end - timedelta(days=1)
    scale_data.readings_copy(coop, seam, end)
    scale_data.rollups_build_bulk(seam, end)
    scale_data.readings_copy(coop, end - timedelta(days=2), seam)
    scale_data.rollups_build_bulk(end - timedelta(days=2), seam)

    hours = [end - timedelta(days=2), seam - timedelta(hours=1), seam, end - timedelta(hours=1)]
    assert scale_data.rollups_differences(hours) == 0
    with connection.cursor() as cursor:
        # The seam's hour holds all four of its intervals, from both loads.
        cursor.execute(
            "SELECT min(intervals), max(intervals), count(*) FROM meters_meterrollup "
            "WHERE granularity = 'hour' AND period_start = %s",
            [seam.replace(minute=0)],
        )
        assert cursor.fetchone() == (4, 4, 12)
        # Every reading is counted once in the daily rollups, none twice.
        cursor.execute(
            "SELECT (SELECT sum(import_wh) FROM meters_reading), "
            "(SELECT sum(import_wh) FROM meters_meterrollup WHERE granularity = 'day'), "
            "(SELECT sum(import_wh) FROM meters_gridrollup "
            " WHERE granularity = 'day' AND level = 'feeder')"
        )
        readings, days, feeders = cursor.fetchone()
        assert readings == days == feeders


def test_the_report_figures_go_through_the_streaming_path(capsys):
    end = scale_data.interval_floor(datetime.now(tz=UTC))
    coop = scale_data.cooperative_create(meters=20, end=end, horizon_days=1)
    written = scale_data.readings_copy(coop, end - timedelta(days=1), end)
    scale_data.rollups_build(end - timedelta(days=1), end)
    figures = bench_scale.Figures()
    figures.readings = written
    bench_scale.reports(figures, (end - timedelta(days=1), end), (end - timedelta(days=30), end))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    metrics = {line["metric"]: line for line in lines}
    assert metrics["report_interval_data_day_rows_per_s"]["rows"] == written
    assert metrics["report_interval_data_month_rows_per_s"]["rows"] == written
    assert metrics["report_interval_data_day_peak_mib"]["value"] > 0
    assert metrics["report_carbon_month_peak_mib"]["rows"] > 0
