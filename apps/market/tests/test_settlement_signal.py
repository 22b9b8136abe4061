"""Settling a run tells the apps above market (`settlement_run_settled`), once per run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.market.models import SettlementRun
from apps.market.services.settlement import settlement_run_settle
from apps.market.signals import settlement_run_settled

from .factories import TariffFactory

pytestmark = pytest.mark.django_db


def test_settling_a_run_sends_settlement_run_settled_once():
    TariffFactory()
    start = datetime(2026, 5, 1, 10, tzinfo=UTC)
    run = SettlementRun.objects.create(
        period_start=start, period_end=start + timedelta(hours=1), status="metered"
    )
    seen = []

    def receiver(sender, *, run, actor=None, **kwargs):
        seen.append((run.pk, run.status, actor))

    settlement_run_settled.connect(receiver, dispatch_uid="test.settlement_run_settled")
    try:
        settlement_run_settle(run=run, actor=None)
        settlement_run_settle(run=run, actor=None)  # already settled: nothing happens again
    finally:
        settlement_run_settled.disconnect(dispatch_uid="test.settlement_run_settled")

    assert seen == [(run.pk, "settled", None)]
