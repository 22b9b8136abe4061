"""Market reads meter readings only through `apps.meters.selectors`, in as few queries as before
(the counts were measured on the code that queried the reading table itself)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.market.models import SettlementRun
from apps.market.services.settlement import settlement_corrections_scan
from apps.market.tests.factories import MemberFactory, make_trade
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db


def test_corrections_scan_reads_one_query_per_settled_run(django_assert_max_num_queries):
    trades = [make_trade(MemberFactory(), settled=True) for _ in range(2)]
    meter = MeterFactory()
    readings_backfill(rows=[BackfillRow(meter_id=meter.pk, interval_start=t.interval_start,
                                        import_wh=10, export_wh=0) for t in trades])  # fmt: skip
    later = timezone.now() + timedelta(hours=1)  # settled after every reading was stored
    SettlementRun.objects.update(settled_at=later)
    with django_assert_max_num_queries(3):  # before: 3 (the runs, then one per run)
        assert settlement_corrections_scan(now=trades[-1].interval_start + timedelta(days=2)) == 0
