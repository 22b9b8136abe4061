"""Automatic demand response: an overload the dispatch plan cannot remove becomes a DR event
(published in mode "auto", a draft for staff in mode "staff"); acceptance 1 end to end with
openleadr's own VEN client: delivery, optIn, reports, then measurement and reward without a
staff click."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.utils import timezone
from openleadr import OpenADRClient

from apps.core.intervals import floor_interval
from apps.grid.models import DispatchPlan, DREvent, DRParticipation, OpenADRReport
from apps.grid.openadr_vtn import Vtn
from apps.grid.services import dr_events_advance
from apps.grid.services.dr_auto import dr_events_from_plan, dr_events_measure_due, overload_windows
from apps.grid.services.openadr import openadr_ven_provision
from apps.grid.tests.factories import ConnectionPointFactory, TransformerFactory
from apps.incentives.models import Reward, RewardRule
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.ports import free_port

STEP = timedelta(minutes=15)


def plan_with(trafo, flows: list[int], start) -> DispatchPlan:
    return DispatchPlan.objects.create(
        start=start,
        intervals=len(flows),
        status=DispatchPlan.Status.OPTIMAL,
        solver_status="optimal",
        cost=Decimal("1"),
        unmanaged_cost=Decimal("1"),
        inputs_fingerprint="x",
        transformer_flows_w={trafo.name: flows},
    )


def test_overload_windows_are_contiguous_runs_cut_to_the_maximum():
    flows = [0, 5, 5, 0, 7, 7, 7, 7, 7, 0]
    assert overload_windows(flows_w=flows, capacity_w=4, first=0, max_steps=3) == [
        (1, 3, 1),
        (4, 7, 3),
        (7, 9, 3),
    ]
    assert overload_windows(flows_w=flows, capacity_w=4, first=5, max_steps=10) == [(5, 9, 3)]


@pytest.mark.django_db
def test_plan_overload_becomes_a_published_event_once_and_a_draft_in_staff_mode(settings):
    trafo = TransformerFactory(capacity_kva=100, power_factor=1.0)
    sites = [ConnectionPointFactory(transformer=trafo) for _ in range(3)]
    sites[2].dr_enrolled = False
    sites[2].save()
    now = floor_interval(timezone.now())
    cap = trafo.capacity_w
    # Overloaded in 15 min (too soon: no notice possible) and from +2 h for 1 h (20 %+ above).
    flows = [cap // 2] * 96
    flows[1] = cap + 1_000
    flows[8:12] = [cap + 5_000, int(cap * 1.3), int(cap * 1.3), cap + 5_000]
    plan = plan_with(trafo, flows, now)

    settings.GRID_AUTO_DR_MODE = "auto"
    [event] = dr_events_from_plan(plan=plan, now=now)
    assert event.status == DREvent.Status.PUBLISHED
    assert (event.start, event.end) == (now + 8 * STEP, now + 12 * STEP)
    assert [i["value"] for i in event.intervals] == [2, 3, 3, 2]
    assert event.target_reduction_w == int(cap * 1.3) - cap
    targets = set(event.participations.values_list("connection_point_id", flat=True))
    assert targets == {sites[0].pk, sites[1].pk}  # the site that left DR is not asked
    assert dr_events_from_plan(plan=plan, now=now) == []  # answered once
    # 75 min later the lead time moves the run's start to +2 h 15 min: still answered once.
    assert dr_events_from_plan(plan=plan, now=now + 5 * STEP) == []

    settings.GRID_AUTO_DR_MODE = "staff"
    flows[40:42] = [cap + 2_000] * 2
    [draft] = dr_events_from_plan(plan=plan_with(trafo, flows, now), now=now)
    assert draft.status == DREvent.Status.DRAFT and draft.start == now + 40 * STEP

    # A cancelled automatic event is staff's answer: the re-plan does not ask again.
    from apps.grid.services import dr_event_cancel

    dr_event_cancel(event_pk=draft.pk, actor=None, reason="not needed")
    assert dr_events_from_plan(plan=plan_with(trafo, flows, now), now=now + STEP) == []

    settings.GRID_AUTO_DR_MODE = "off"
    flows[60] = cap + 2_000
    assert dr_events_from_plan(plan=plan_with(trafo, flows, now), now=now) == []


def backfill(meter, *, start, end, event_wh: int) -> None:
    """30 days of 15-minute import (400 Wh per interval), `event_wh` during the event."""
    rows, t = [], (start - timedelta(days=30)).replace(hour=0, minute=0)
    while t < end:
        wh = event_wh if start <= t < end else 400
        rows.append(BackfillRow(meter_id=meter.pk, interval_start=t, import_wh=wh, export_wh=0))
        t += STEP
    readings_backfill(rows=rows)


async def _ven_session(port: int) -> dict:
    vtn = Vtn("127.0.0.1", port, poll_seconds=0.5)
    await vtn.start()
    ven = OpenADRClient(ven_name="ven-trafo-site", vtn_url=vtn.url, show_fingerprint=False)
    got: list = []

    async def on_event(event):
        got.append(event)
        return "optIn"

    ven.add_handler("on_event", on_event)
    ven.add_report(
        callback=lambda: 1_500.0,
        resource_id="site-meter",
        measurement="power_real",
        unit="W",
        sampling_rate=timedelta(seconds=1),
        report_duration=timedelta(hours=1),
    )

    def done() -> bool:
        part = DRParticipation.objects.filter(connection_point__openadr_vens__isnull=False).first()
        return bool(part and part.opt == "optIn" and OpenADRReport.objects.exists())

    try:
        await ven.run()
        for _ in range(150):
            if await sync_to_async(done)():
                break
            await asyncio.sleep(0.2)
    finally:
        await ven.stop()
        await vtn.stop()
    return {"events": got}


@pytest.mark.django_db(transaction=True)
def test_acceptance_1_overload_event_reaches_an_openleadr_ven_and_is_measured_and_rewarded(
    settings,
):
    settings.GRID_AUTO_DR_MODE = "auto"
    trafo = TransformerFactory(capacity_kva=100, power_factor=1.0)
    site = ConnectionPointFactory(transformer=trafo)
    meter = MeterFactory(member=site.member, connection_point=site)
    openadr_ven_provision(ven_name="ven-trafo-site", connection_point=site)
    RewardRule.objects.create(
        kind=RewardRule.Kind.DR_PERFORMANCE,
        tokens_per_kwh=10,
        valid_from=timezone.now() - timedelta(days=365),
    )
    now = floor_interval(timezone.now())
    cap = trafo.capacity_w
    flows = [cap // 2] * 96
    flows[8:16] = [cap + 10_000] * 8
    [event] = dr_events_from_plan(plan=plan_with(trafo, flows, now), now=now)

    seen = async_to_sync(_ven_session)(free_port())

    delivered = seen["events"][0]
    assert delivered["event_descriptor"]["event_id"] == event.event_id
    assert delivered["event_signals"][0]["signal_name"] == "SIMPLE"
    part = DRParticipation.objects.get(event=event)
    assert part.opt == DRParticipation.Opt.OPT_IN
    assert OpenADRReport.objects.filter(resource_id="site-meter", value=1_500.0).exists()

    # The event runs; the site's meter shows the cut; the periodic task measures and rewards.
    backfill(meter, start=event.start, end=event.end, event_wh=150)
    dr_events_advance(now=event.start)
    dr_events_advance(now=event.end)
    assert dr_events_measure_due(now=event.end + timedelta(hours=3)) == [event.event_id]
    part.refresh_from_db()
    assert (part.baseline_wh, part.actual_wh, part.delivered_wh) == (8 * 400, 8 * 150, 8 * 250)
    reward = Reward.objects.get(member=site.member, kind=RewardRule.Kind.DR_PERFORMANCE)
    assert reward.tokens == 20 and part.reward_tokens == 20  # 2 kWh × 10 tokens
