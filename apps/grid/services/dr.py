"""Demand-response write services (OpenADR 2.0b concepts: event, modification number, signal,
intervals, targets, opt-in/opt-out; performance against a similar-days baseline)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.selectors import actor_user
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.chain.services import chain_intent_submit, member_chain_address
from apps.core import pg_notify
from apps.core.exceptions import ApplicationError
from apps.core.intervals import INTERVAL, ensure_utc, floor_interval
from apps.core.state import check_transition
from apps.core.types import Actor
from apps.grid import realtime
from apps.grid.baseline import BaselineError, similar_day_baseline
from apps.grid.lock_objects import (
    dr_events_lock,
    dr_participation_lock,
    opted_in_participations_lock,
)
from apps.grid.models import ConnectionPoint, DREvent, DRParticipation
from apps.grid.services.dispatch import dr_cancellation_enqueue
from apps.grid.signals import DRRewardGranted, dr_performance_measured
from apps.notifications.models import Kind as NotificationKind
from apps.notifications.services import notify

if TYPE_CHECKING:
    from apps.accounts.models import Member

Status = DREvent.Status
Opt = DRParticipation.Opt
# Published, changed or cancelled events are announced here (at commit) to the OpenADR VTN.
DR_EVENTS_CHANNEL = "grid_dr_events"


def _event_payload(event: DREvent, participation: DRParticipation | None = None) -> dict:
    data = {
        "id": event.pk,
        "event_id": event.event_id,
        "modification_number": event.modification_number,
        "status": event.status,
        "signal_name": event.signal_name,
        "signal_type": event.signal_type,
        "start": event.start.isoformat(),
        "end": event.end.isoformat(),
        "intervals": event.intervals,
        "target_reduction_w": event.target_reduction_w,
    }
    if participation is not None:
        data["opt"] = participation.opt
    return data


def _signal_hash(event: DREvent) -> str:
    canonical = json.dumps(
        {
            "event_id": event.event_id,
            "modification": event.modification_number,
            "signal": [event.signal_name, event.signal_type],
            "intervals": event.intervals,
            "start": event.start.isoformat(),
            "end": event.end.isoformat(),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return "0x" + hashlib.sha256(canonical.encode()).hexdigest()


def _notify(event: DREvent) -> None:
    """After commit: push the event to every targeted member's portal and to staff."""
    parts = list(event.participations.select_related("connection_point"))
    for part in parts:
        realtime.broadcast(
            realtime.member_group(part.connection_point.member_id),
            {"type": "dr.event", "event": _event_payload(event, part)},
        )
    realtime.broadcast(realtime.STAFF_GROUP, {"type": "dr.event", "event": _event_payload(event)})


def _chain_submit(*, intent: str, payload: dict, key: str, actor: Actor) -> str:
    """Record through GridBalancer via the chain outbox; returns the intent's reference."""
    row = chain_intent_submit(intent=intent, payload=payload, idempotency_key=key, actor=actor)
    return f"chain_intent:{row.pk}"


def _signal_intervals(
    start: datetime, end: datetime, values: list[float] | None, step: timedelta
) -> list[dict]:
    out = []
    t = start
    i = 0
    while t < end:
        value = values[min(i, len(values) - 1)] if values else 1
        out.append(
            {"start": t.isoformat(), "duration_s": int(step.total_seconds()), "value": value}
        )
        t += step
        i += 1
    return out


@transaction.atomic
def dr_event_create(
    *,
    start: datetime,
    end: datetime,
    connection_point_ids: list[int],
    signal_name: str = DREvent.SignalName.SIMPLE,
    signal_type: str = DREvent.SignalType.LEVEL,
    signal_values: list[float] | None = None,
    target_reduction_w: int = 0,
    event_id: str = "",
    actor: Actor = None,
) -> DREvent:
    """Create a draft event targeting the given sites (OpenADR eiTarget: resource ids)."""
    start, end = ensure_utc(start), ensure_utc(end)
    if end <= start:
        raise ApplicationError("An event must end after it starts.", {"start": start, "end": end})
    if floor_interval(start) != start or floor_interval(end) != end:
        raise ApplicationError("Event start and end must be on 15-minute interval boundaries.")
    if signal_name not in DREvent.SignalName.values or signal_type not in DREvent.SignalType.values:
        raise ApplicationError("Unknown signal name or type.", {"signal_name": signal_name})
    points = list(ConnectionPoint.objects.filter(pk__in=connection_point_ids))
    if not points or len(points) != len(set(connection_point_ids)):
        raise ApplicationError(
            "Every target must be an existing connection point.",
            {"connection_point_ids": connection_point_ids},
        )
    event = DREvent.objects.create(
        event_id=event_id or f"dr-{uuid.uuid4().hex[:12]}",
        signal_name=signal_name,
        signal_type=signal_type,
        intervals=_signal_intervals(start, end, signal_values, INTERVAL),
        start=start,
        end=end,
        target_reduction_w=target_reduction_w,
        created_by=actor_user(actor),
    )
    DRParticipation.objects.bulk_create(
        [
            DRParticipation(
                event=event,
                connection_point=cp,
                opt=Opt.PENDING if cp.dr_enrolled else Opt.OPT_OUT,
            )
            for cp in points
        ]
    )
    audit_log_write(
        event=AuditEvent.DR_EVENT_CREATED,
        actor=actor,
        target=event,
        details={"event_id": event.event_id, "targets": len(points)},
    )
    return event


def _locked_event(event_pk: int) -> DREvent:
    rows = dr_events_lock([event_pk])
    if not rows:
        raise ApplicationError("No such demand-response event.", {"event": event_pk})
    return rows[0]


@transaction.atomic
def dr_event_publish(*, event_pk: int, actor: Actor = None, reason: str = "") -> DREvent:
    """Publish a draft (members are notified live) or re-publish a change of a published event
    (OpenADR: the modification number grows by one on every change)."""
    event = _locked_event(event_pk)
    check_transition(DREvent.TRANSITIONS, event.status, Status.PUBLISHED)
    now = timezone.now()
    if event.status == Status.PUBLISHED:
        event.modification_number += 1
        event.modification_reason = reason[:200]
    event.published_at = now
    event.chain_intent_ref = _chain_submit(
        intent="dr_event_record",
        payload={
            "event_id": event.pk,
            "modification": event.modification_number,
            "start": int(event.start.timestamp()),
            "end": int(event.end.timestamp()),
            "target_w": event.target_reduction_w,
            "signal_hash": _signal_hash(event),
        },
        key=f"grid:dr_event:{event.pk}:{event.modification_number}",
        actor=actor,
    )
    event.transition_to(
        Status.PUBLISHED,
        actor=actor,
        event=AuditEvent.DR_EVENT_PUBLISHED,
        details={"modification_number": event.modification_number, "reason": reason},
        update_fields=None,
    )
    event.participations.update(notified_at=now, notified_modification=event.modification_number)
    _notify_members(event, actor=actor)
    transaction.on_commit(lambda: _notify(event))
    pg_notify.notify(DR_EVENTS_CHANNEL)
    return event


def _notify_members(event: DREvent, *, actor: Actor) -> None:
    """Tell every targeted member who has not opted out of the event (inbox, e-mail and web
    push per their notification preferences), once per modification."""
    zone = ZoneInfo(settings.COOPERATIVE_TIME_ZONE)
    start, end = event.start.astimezone(zone), event.end.astimezone(zone)
    changed = event.modification_number > 0
    subject = f"{'Changed: ' if changed else ''}Demand response {start:%a %d %b %H:%M}–{end:%H:%M}"
    body = (
        f"The cooperative asks you to use less electricity from {start:%H:%M} to {end:%H:%M} on "
        f"{start:%A %d %B}"
        + (
            f" (target reduction {event.target_reduction_w} W in total)."
            if event.target_reduction_w
            else "."
        )
        + " You can opt out on the event's page."
    )
    link = reverse("grid:event_detail", args=[event.pk])
    parts = (
        event.participations.exclude(opt=Opt.OPT_OUT)
        .filter(connection_point__member__isnull=False)
        .select_related("connection_point__member__user")
        .order_by("pk")
    )
    for part in parts:
        notify(
            member=part.connection_point.member,
            kind=NotificationKind.DR_EVENT,
            subject=subject,
            body=body,
            link=link,
            dedup_key=f"dr_event:{event.pk}:{event.modification_number}",
            actor=actor,
        )


@transaction.atomic
def dr_event_modify(
    *,
    event_pk: int,
    reason: str,
    end: datetime | None = None,
    signal_values: list[float] | None = None,
    target_reduction_w: int | None = None,
    actor: Actor = None,
) -> DREvent:
    """Change a draft or published event; a published one is re-published (modification + 1)."""
    event = _locked_event(event_pk)
    if event.status not in (Status.DRAFT, Status.PUBLISHED):
        raise ApplicationError(
            f"A {event.status} event cannot be modified.", {"status": event.status}
        )
    if end is not None:
        end = ensure_utc(end)
        if end <= event.start or floor_interval(end) != end:
            raise ApplicationError("The new end must be an interval boundary after the start.")
        event.end = end
    if target_reduction_w is not None:
        event.target_reduction_w = target_reduction_w
    event.intervals = _signal_intervals(
        event.start,
        event.end,
        signal_values or [i["value"] for i in event.intervals],
        INTERVAL,
    )
    event.save()
    if event.status == Status.PUBLISHED:
        return dr_event_publish(event_pk=event.pk, actor=actor, reason=reason)
    return event


@transaction.atomic
def dr_opt_set(*, member: Member, event_pk: int, opt: str, actor: Actor = None) -> DRParticipation:
    """A member opts one of their sites in or out (oadrCreateOpt). Members can only answer for
    their own sites: anything else is 'not found'."""
    from django.http import Http404

    if opt not in (Opt.OPT_IN, Opt.OPT_OUT):
        raise ApplicationError("Answer optIn or optOut.", {"opt": opt})
    event = _locked_event(event_pk)
    part = dr_participation_lock(event=event, member=member)
    if part is None:
        raise Http404("No such event for this member.")
    if event.status not in (Status.PUBLISHED, Status.ACTIVE):
        raise ApplicationError(
            f"This event is {event.get_status_display().lower()}; it no longer takes answers.",
            {"status": event.status},
        )
    previous = part.opt
    part.opt = opt
    part.responded_at = timezone.now()
    part.save(update_fields=["opt", "responded_at"])
    if opt == Opt.OPT_IN or previous == Opt.OPT_IN:
        _record_commitment(event, part, member, actor)
    audit_log_write(
        event=AuditEvent.DR_PARTICIPATION_OPTED,
        actor=actor or getattr(member, "user", None),
        target=part,
        details={"event_id": event.event_id, "from": previous, "to": opt},
    )
    transaction.on_commit(
        lambda: realtime.broadcast(
            realtime.STAFF_GROUP,
            {
                "type": "dr.opt",
                "event_id": event.event_id,
                "site": part.connection_point.code,
                "opt": opt,
            },
        )
    )
    return part


@transaction.atomic
def dr_event_cancel(*, event_pk: int, actor: Actor = None, reason: str = "") -> DREvent:
    event = _locked_event(event_pk)
    was_published = event.status != Status.DRAFT
    event.modification_number += 1 if was_published else 0
    event.modification_reason = reason[:200]
    event.transition_to(
        Status.CANCELLED,
        actor=actor,
        event=AuditEvent.DR_EVENT_CANCELLED,
        details={"reason": reason},
        update_fields=None,
    )
    if was_published:
        transaction.on_commit(lambda: _notify(event))
        transaction.on_commit(lambda: dr_cancellation_enqueue(event.pk))
        pg_notify.notify(DR_EVENTS_CHANNEL)
    return event


@transaction.atomic
def dr_events_advance(*, now: datetime | None = None) -> dict[str, int]:
    """Move published events to active at their start and active ones to completed at their end
    (periodic task)."""
    now = now or timezone.now()
    moved = {"activated": 0, "completed": 0}
    ids = list(
        DREvent.objects.filter(status__in=[Status.PUBLISHED, Status.ACTIVE])
        .filter(start__lte=now)
        .values_list("pk", flat=True)
    )
    for event in dr_events_lock(ids):
        via: list[str] = []
        target = event.status
        if target == Status.PUBLISHED and event.start <= now:
            target = Status.ACTIVE
            moved["activated"] += 1
        if target == Status.ACTIVE and event.end <= now:
            if event.status != Status.ACTIVE:
                via.append(Status.ACTIVE)  # started and ended since the last run
            target = Status.COMPLETED
            moved["completed"] += 1
        if target == event.status:
            continue  # active and not over yet: nothing to move, nothing to log
        event.transition_to(
            target,
            actor=None,
            event=(
                AuditEvent.DR_EVENT_ACTIVATED
                if target == Status.ACTIVE
                else AuditEvent.DR_EVENT_COMPLETED
            ),
            via=via,
        )
        transaction.on_commit(partial(_notify, event))
    return moved


def _site_import_wh(member_id: int, start: datetime, end: datetime) -> dict[datetime, int]:
    """Validated metered import of a member's meters per interval (meters app selector)."""
    from apps.meters.selectors import member_interval_energy

    data = member_interval_energy(member_ids=[member_id], start=start, end=end)
    return {t.astimezone(UTC): v.import_wh for (_, t), v in data.items()}


@transaction.atomic
def dr_event_measure(*, event_pk: int, actor: Actor = None) -> DREvent:
    """After a completed event: baseline, actual and delivered energy of every opted-in site from
    validated meter data; performance recorded via GridBalancer (chain outbox) and rewarded via
    incentives. Idempotent: a settled event cannot be measured again."""
    event = _locked_event(event_pk)
    check_transition(DREvent.TRANSITIONS, event.status, Status.SETTLED)
    tz = ZoneInfo(settings.COOPERATIVE_TIME_ZONE)
    lookback = timedelta(days=45)
    other_event_days = {
        d.astimezone(tz).date()
        for d in DREvent.objects.exclude(pk=event.pk)
        .exclude(status=Status.CANCELLED)
        .filter(start__gte=event.start - lookback, start__lt=event.start)
        .values_list("start", flat=True)
    }
    parts = opted_in_participations_lock(event)
    results: list[dict[str, object]] = []
    for part in parts:
        member = part.connection_point.member
        energy = _site_import_wh(member.pk, event.start - lookback - timedelta(days=1), event.end)
        try:
            baseline = similar_day_baseline(
                energy, start=event.start, end=event.end, tz=tz, exclude=other_event_days
            )
        except BaselineError as exc:
            part.measured_at = timezone.now()
            part.save(update_fields=["measured_at"])
            results.append({"site": part.connection_point.code, "error": str(exc)})
            continue
        actual = sum(v for t, v in energy.items() if event.start <= t < event.end)
        expected = int((event.end - event.start) / INTERVAL)
        have = sum(1 for t in energy if event.start <= t < event.end)
        if have < expected:
            results.append(
                {
                    "site": part.connection_point.code,
                    "error": f"{expected - have} interval(s) of the event are not metered yet",
                }
            )
            continue
        part.baseline_wh = baseline.total_wh
        part.actual_wh = int(actual)
        part.delivered_wh = max(0, part.baseline_wh - part.actual_wh)
        part.baseline_days = [d.isoformat() for d in baseline.days]
        part.measured_at = timezone.now()
        part.chain_intent_ref = _record_performance(event, part, member, actor)
        _reward(event, part, member, actor)
        part.save()
        results.append({"site": part.connection_point.code, "delivered_wh": part.delivered_wh})
    event.transition_to(
        Status.SETTLED,
        actor=actor,
        event=AuditEvent.DR_EVENT_MEASURED,
        details={"results": results},
    )
    transaction.on_commit(lambda: _notify(event))
    return event


def _record_commitment(event: DREvent, part: DRParticipation, member: Member, actor: Actor) -> None:
    """GridBalancer.recordCommitment: an opted-in site commits its share of the event's target
    reduction; opting out again records a commitment of 0."""
    targets = event.participations.count() or 1
    committed = event.target_reduction_w // targets if part.opt == Opt.OPT_IN else 0
    assert part.responded_at is not None  # set by the answer being recorded
    stamp = int(part.responded_at.timestamp() * 1000)
    _chain_submit(
        intent="dr_commitment_record",
        payload={
            "event_id": event.pk,
            "member": member_chain_address(member),
            "committed_w": committed,
        },
        key=f"grid:dr_commitment:{event.pk}:{part.connection_point_id}:{stamp}",
        actor=actor,
    )


def _record_performance(event: DREvent, part: DRParticipation, member: Member, actor: Actor) -> str:
    return _chain_submit(
        intent="dr_performance_record",
        payload={
            "event_id": event.pk,
            "member": member_chain_address(member),
            "baseline_wh": max(0, part.baseline_wh or 0),
            "actual_wh": max(0, part.actual_wh or 0),
            "delivered_wh": part.delivered_wh,
        },
        key=f"grid:dr_performance:{event.pk}:{part.connection_point_id}",
        actor=actor,
    )


def _reward(event: DREvent, part: DRParticipation, member: Member, actor: Actor) -> None:
    """Ask the apps above grid to reward the site's performance (`dr_performance_measured`)."""
    for _receiver, granted in dr_performance_measured.send(
        sender=DRParticipation,
        member=member,
        performance_wh=part.delivered_wh or 0,
        event_ref=f"{event.pk}:{part.connection_point_id}",
        at=event.end,
        actor=actor,
    ):
        if isinstance(granted, DRRewardGranted):
            part.reward_tokens = granted.tokens
            part.reward_ref = granted.ref
