"""Automatic demand response: when the current dispatch plan still loads a transformer above its
capacity (after batteries and EV charging were shifted), a DR event asks the sites on that
transformer to reduce load during the overload (policy: `GRID_AUTO_DR_*` in `apps/grid/conf.py`).

In mode "auto" the event is published at once (members, the OpenADR VTN and the portal see it);
in mode "staff" it stays a draft that staff publish or cancel in the admin. Staff can cancel an
automatic event like any other. Each overload is answered once (the event id names the
transformer and the start, and intervals an earlier automatic event of the transformer covers —
cancelled ones too — are not answered again). Completed automatic events are measured against
the baseline and rewarded by the periodic task (`dr_events_measure_due`), again without a staff
click."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.intervals import ensure_utc
from apps.core.types import Actor
from apps.grid import conf
from apps.grid.models import ConnectionPoint, DispatchPlan, DREvent, Transformer
from apps.grid.selectors import current_plan
from apps.grid.services.dr import dr_event_create, dr_event_measure, dr_event_publish

logger = logging.getLogger(__name__)
MODES = ("auto", "staff", "off")
AUTO_PREFIX = "auto-"


def overload_windows(
    *, flows_w: list[int], capacity_w: int, first: int, max_steps: int
) -> list[tuple[int, int, int]]:
    """(start index, end index exclusive, worst excess W) of each run of intervals from `first`
    on where the flow exceeds the capacity; runs longer than `max_steps` are cut."""
    runs: list[tuple[int, int, int]] = []
    i = first
    while i < len(flows_w):
        if flows_w[i] <= capacity_w:
            i += 1
            continue
        j = i
        while j < len(flows_w) and flows_w[j] > capacity_w and j - i < max_steps:
            j += 1
        runs.append((i, j, max(flows_w[k] - capacity_w for k in range(i, j))))
        i = j
    return runs


def _uncovered(
    flows: list[int], *, trafo: Transformer, plan: DispatchPlan, step: timedelta
) -> list[int]:
    """The flows with the intervals an earlier automatic event of the transformer already covers
    capped at its capacity, so a re-plan never answers the same overload again with an
    overlapping event (the horizon rolls and the lead time moves the run's start). A cancelled
    event covers its intervals too: staff decided against it."""
    end = plan.start + len(flows) * step
    windows = list(
        DREvent.objects.filter(
            event_id__startswith=f"{AUTO_PREFIX}t{trafo.pk}-", start__lt=end, end__gt=plan.start
        ).values_list("start", "end")
    )
    if not windows:
        return flows
    out = list(flows)
    for k in range(len(out)):
        t = plan.start + k * step
        if any(a <= t < b for a, b in windows):
            out[k] = min(out[k], trafo.capacity_w)
    return out


@transaction.atomic
def dr_events_from_plan(
    *, plan: DispatchPlan | None = None, now: datetime | None = None, actor: Actor = None
) -> list[DREvent]:
    """Create (and in mode "auto" publish) one DR event per overload run of the plan."""
    mode = conf.get("GRID_AUTO_DR_MODE")
    if mode not in MODES:
        raise ValueError(f"GRID_AUTO_DR_MODE must be one of {MODES}, not {mode!r}")
    plan = plan or current_plan()
    if mode == "off" or plan is None:
        return []
    now = ensure_utc(now or timezone.now())
    step = timedelta(seconds=plan.step_seconds)
    earliest = now + timedelta(minutes=conf.get("GRID_AUTO_DR_LEAD_MINUTES"))
    first = max(0, -(-int((earliest - plan.start) / timedelta(seconds=1)) // plan.step_seconds))
    max_steps = int(timedelta(hours=conf.get("GRID_AUTO_DR_MAX_HOURS")) / step)
    created = []
    for trafo in Transformer.objects.order_by("pk"):
        flows = plan.transformer_flows_w.get(trafo.name)
        if not flows:
            continue
        sites = list(
            ConnectionPoint.objects.filter(transformer=trafo, dr_enrolled=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not sites:
            continue
        flows = _uncovered(flows, trafo=trafo, plan=plan, step=step)
        for i, j, excess in overload_windows(
            flows_w=flows, capacity_w=trafo.capacity_w, first=first, max_steps=max_steps
        ):
            start = plan.start + i * step
            event_id = f"{AUTO_PREFIX}t{trafo.pk}-{start:%Y%m%dT%H%M}"
            if DREvent.objects.filter(event_id=event_id).exists():
                continue
            levels: list[float] = [
                3 if flows[k] - trafo.capacity_w > 0.2 * trafo.capacity_w else 2
                for k in range(i, j)
            ]
            event = dr_event_create(
                start=start,
                end=plan.start + j * step,
                connection_point_ids=sites,
                signal_values=levels,
                target_reduction_w=int(excess),
                event_id=event_id,
                actor=actor,
            )
            audit_log_write(
                event=AuditEvent.DR_EVENT_TRIGGERED,
                actor=actor,
                target=event,
                details={
                    "transformer": trafo.name,
                    "plan": plan.pk,
                    "excess_w": int(excess),
                    "mode": mode,
                },
            )
            if mode == "auto":
                event = dr_event_publish(event_pk=event.pk, actor=actor, reason="overload")
            created.append(event)
    return created


def dr_events_measure_due(*, now: datetime | None = None) -> list[str]:
    """Measure and reward the automatic events that completed at least
    `GRID_AUTO_DR_MEASURE_AFTER_HOURS` ago (the meter data must have arrived); an event whose
    data is still missing is tried again on the next run. Returns the measured event ids."""
    if conf.get("GRID_AUTO_DR_MODE") == "off":
        return []
    now = ensure_utc(now or timezone.now())
    cutoff = now - timedelta(hours=conf.get("GRID_AUTO_DR_MEASURE_AFTER_HOURS"))
    measured = []
    due = DREvent.objects.filter(
        event_id__startswith=AUTO_PREFIX, status=DREvent.Status.COMPLETED, end__lte=cutoff
    ).values_list("pk", "event_id")
    for pk, event_id in due:
        try:
            dr_event_measure(event_pk=pk)
        except ApplicationError as exc:
            logger.info("automatic DR event %s not measured yet: %s", event_id, exc.message)
            continue
        measured.append(event_id)
    return measured
