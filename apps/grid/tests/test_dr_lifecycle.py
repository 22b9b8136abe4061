"""Acceptance 3: a DR event from creation to recorded performance and reward."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.urls import reverse

from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.chain.models import ChainIntent
from apps.core.exceptions import ApplicationError, InvalidTransition
from apps.grid import realtime
from apps.grid.models import DREvent, DRParticipation
from apps.grid.services import (
    dr_event_create,
    dr_event_measure,
    dr_event_modify,
    dr_event_publish,
    dr_events_advance,
    dr_opt_set,
)
from apps.grid.tests.factories import ConnectionPointFactory
from apps.incentives.models import Reward, RewardRule
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

# Wednesday 2026-03-18, 17:00-19:00 UTC (18:00-20:00 in Berlin, CET).
EVENT_START = datetime(2026, 3, 18, 17, 0, tzinfo=UTC)
EVENT_END = EVENT_START + timedelta(hours=2)
STEP = timedelta(minutes=15)


def meter_history(meter, *, event_wh: int) -> None:
    """30 days of 15-minute import: weekdays 400 Wh/interval in the evening window, 100 Wh
    otherwise; weekends 900 Wh in the window (must not enter a weekday baseline); during the
    event itself `event_wh`."""
    rows = []
    t = EVENT_START - timedelta(days=30)
    t = t.replace(hour=0, minute=0)
    while t < EVENT_END:
        in_window = 17 <= t.hour < 19
        weekend = t.weekday() >= 5
        if EVENT_START <= t < EVENT_END:
            wh = event_wh
        elif in_window:
            wh = 900 if weekend else 400
        else:
            wh = 100
        rows.append(BackfillRow(meter_id=meter.pk, interval_start=t, import_wh=wh, export_wh=0))
        t += STEP
    readings_backfill(rows=rows)


def listen(group: str):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return layer, channel


def receive(layer, channel, predicate, timeout: float = 3.0) -> dict:
    """The first message on `channel` matching `predicate` (fails after `timeout`)."""

    async def wait():
        while True:
            message = await layer.receive(channel)
            if predicate(message):
                return message

    async def run():
        return await asyncio.wait_for(wait(), timeout)

    return async_to_sync(run)()


def test_dr_event_full_lifecycle(django_capture_on_commit_callbacks, staff_user):
    RewardRule.objects.create(
        kind=RewardRule.Kind.DR_PERFORMANCE,
        tokens_per_kwh=10,
        valid_from=EVENT_START - timedelta(days=365),
    )
    site_in = ConnectionPointFactory()
    site_out = ConnectionPointFactory(transformer=site_in.transformer)
    meter_in = MeterFactory(member=site_in.member, connection_point=site_in)
    meter_out = MeterFactory(member=site_out.member, connection_point=site_out)
    meter_history(meter_in, event_wh=150)  # cuts the evening load
    meter_history(meter_out, event_wh=400)

    # Created (draft): targets are the two sites; nobody is notified yet.
    event = dr_event_create(
        start=EVENT_START,
        end=EVENT_END,
        connection_point_ids=[site_in.pk, site_out.pk],
        signal_values=[2],
        target_reduction_w=3_000,
        actor=staff_user,
    )
    assert event.status == DREvent.Status.DRAFT and event.modification_number == 0
    assert len(event.intervals) == 8 and event.intervals[0]["value"] == 2

    # Published: each targeted member gets a live message in their own group only.
    layer, channel = listen(realtime.member_group(site_in.member_id))
    with django_capture_on_commit_callbacks(execute=True):
        event = dr_event_publish(event_pk=event.pk, actor=staff_user)
    message = receive(layer, channel, lambda m: m["event"]["modification_number"] == 0)
    assert message["event"]["event_id"] == event.event_id
    assert message["event"]["opt"] == DRParticipation.Opt.PENDING
    assert DRParticipation.objects.filter(event=event, notified_at__isnull=False).count() == 2

    # Modified: the modification number grows and members are notified again.
    with django_capture_on_commit_callbacks(execute=True):
        event = dr_event_modify(
            event_pk=event.pk, reason="deeper cut", signal_values=[3], actor=staff_user
        )
    assert event.modification_number == 1
    message = receive(layer, channel, lambda m: m["event"]["modification_number"] == 1)
    assert message["event"]["modification_number"] == 1
    assert message["event"]["intervals"][0]["value"] == 3

    # Opted in / out by the members themselves, through the portal.
    client_in = _client_for(site_in.member.user)
    response = client_in.post(reverse("grid:event_opt", args=[event.pk]), {"opt": "optIn"})
    assert response.status_code == 302
    dr_opt_set(member=site_out.member, event_pk=event.pk, opt=DRParticipation.Opt.OPT_OUT)
    assert DRParticipation.objects.get(event=event, connection_point=site_in).opt == "optIn"
    # The opt-in is committed through GridBalancer: the site's share of the 3 kW target.
    commitment = ChainIntent.objects.get(intent="dr_commitment_record")
    assert commitment.payload["committed_w"] == 1_500
    assert commitment.payload["event_id"] == event.pk

    # The clock runs: active at the start, completed at the end.
    assert dr_events_advance(now=EVENT_START + STEP) == {"activated": 1, "completed": 0}
    assert dr_events_advance(now=EVENT_END) == {"activated": 0, "completed": 1}

    # Metered, baseline computed, performance recorded on chain (outbox) and rewarded.
    event = dr_event_measure(event_pk=event.pk, actor=staff_user)
    assert event.status == DREvent.Status.SETTLED
    part = DRParticipation.objects.get(event=event, connection_point=site_in)
    assert part.baseline_wh == 8 * 400  # weekdays only: weekend evenings (900) are excluded
    assert len(part.baseline_days) == 10
    assert all(datetime.fromisoformat(d).weekday() < 5 for d in part.baseline_days)
    assert part.actual_wh == 8 * 150
    assert part.delivered_wh == 8 * 250
    intent = ChainIntent.objects.get(idempotency_key=f"grid:dr_performance:{event.pk}:{site_in.pk}")
    assert intent.intent == "dr_performance_record"
    assert intent.payload["delivered_wh"] == 2_000
    assert ChainIntent.objects.filter(intent="dr_event_record").count() == 2  # mod 0 and mod 1
    reward = Reward.objects.get(member=site_in.member, kind=RewardRule.Kind.DR_PERFORMANCE)
    assert reward.basis_wh == 2_000 and reward.tokens == 20  # 2 kWh × 10 tokens
    assert part.reward_tokens == 20
    # The member who opted out is neither measured nor rewarded.
    out = DRParticipation.objects.get(event=event, connection_point=site_out)
    assert out.delivered_wh is None
    assert not Reward.objects.filter(member=site_out.member).exists()
    assert AuditLog.objects.filter(
        event=AuditEvent.DR_EVENT_MEASURED, target_id=str(event.pk)
    ).exists()

    # Settled is final: measuring again or answering late is refused.
    with pytest.raises(InvalidTransition):
        dr_event_measure(event_pk=event.pk)
    with pytest.raises(ApplicationError, match="no longer takes answers"):
        dr_opt_set(member=site_in.member, event_pk=event.pk, opt=DRParticipation.Opt.OPT_OUT)
    # The member sees their performance on the Events page.
    page = client_in.get(reverse("grid:events"))
    assert page.status_code == 200
    assert b"2.00 kWh" in page.content
    assert b"18:00" in page.content  # rendered in the cooperative's local time (CET)


def _client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_members_see_only_their_own_participation(client):
    site = ConnectionPointFactory()
    stranger = ConnectionPointFactory()
    event = dr_event_create(start=EVENT_START, end=EVENT_END, connection_point_ids=[site.pk])
    dr_event_publish(event_pk=event.pk)
    client.force_login(stranger.member.user)
    assert client.get(reverse("grid:event_detail", args=[event.pk])).status_code == 404
    response = client.post(reverse("grid:event_opt", args=[event.pk]), {"opt": "optIn"})
    assert response.status_code == 404
    assert DRParticipation.objects.get(event=event).opt == DRParticipation.Opt.PENDING
    assert event.event_id.encode() not in client.get(reverse("grid:events")).content
    client.force_login(site.member.user)
    assert client.get(reverse("grid:event_detail", args=[event.pk])).status_code == 200
    assert event.event_id.encode() in client.get(reverse("grid:events")).content


def test_baseline_needs_enough_similar_days():
    site = ConnectionPointFactory()
    meter = MeterFactory(member=site.member, connection_point=site)
    readings_backfill(
        rows=[
            BackfillRow(
                meter_id=meter.pk, interval_start=EVENT_START + i * STEP, import_wh=100, export_wh=0
            )
            for i in range(8)
        ]
    )
    event = dr_event_create(start=EVENT_START, end=EVENT_END, connection_point_ids=[site.pk])
    dr_event_publish(event_pk=event.pk)
    dr_opt_set(member=site.member, event_pk=event.pk, opt=DRParticipation.Opt.OPT_IN)
    dr_events_advance(now=EVENT_END)
    dr_event_measure(event_pk=event.pk)
    part = DRParticipation.objects.get(event=event)
    assert part.delivered_wh is None
    log = AuditLog.objects.get(event=AuditEvent.DR_EVENT_MEASURED, target_id=str(event.pk))
    assert "only 0 similar day(s)" in log.details["results"][0]["error"]
