"""Reads of the grid app. Members only ever see their own DR participation (404 otherwise)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from apps.core.intervals import INTERVAL
from apps.grid.models import (
    ChargePoint,
    ChargePointMeterValue,
    ChargingSession,
    ChargingToken,
    ConnectionPoint,
    DeviceCommand,
    DispatchPlan,
    DREvent,
    DRParticipation,
    Feeder,
    FlexibleDevice,
    Forecast,
    ForecastModelChoice,
    GridAlert,
    OpenADREventDelivery,
    OpenADRVen,
    StabilityAssessment,
    Substation,
    Transformer,
)
from apps.meters.selectors import interval_totals

if TYPE_CHECKING:
    from apps.accounts.models import Member


def member_dr_participations(*, member: Member) -> QuerySet[DRParticipation]:
    """The member's own participations in published (or later) events, newest first."""
    return (
        DRParticipation.objects.filter(connection_point__member=member)
        .exclude(event__status=DREvent.Status.DRAFT)
        .select_related("event", "connection_point")
        .order_by("-event__start", "-pk")
    )


def member_dr_participation_get(*, member: Member, event_pk: int) -> DRParticipation:
    part = member_dr_participations(member=member).filter(event_id=event_pk).first()
    if part is None:
        raise Http404("No such event.")
    return part


def topology_tree() -> list[Substation]:
    """Substations with feeders, transformers and connection points (4 queries)."""
    return list(
        Substation.objects.order_by("name").prefetch_related(
            Prefetch("feeders", queryset=Feeder.objects.order_by("name")),
            Prefetch(
                "feeders__transformers",
                queryset=Transformer.objects.order_by("name"),
            ),
            Prefetch(
                "feeders__transformers__connection_points",
                queryset=ConnectionPoint.objects.select_related("member").order_by("code"),
            ),
        )
    )


def forecast_values(
    *, series_key: str, start: datetime, intervals: int
) -> tuple[np.ndarray, list[int]]:
    """Wh per interval in [start, start + intervals) of one series, stitched from the latest
    issued forecasts (day-ahead forecasts start at midnight; a plan starts at any interval), and
    the ids of the forecasts used. Intervals no forecast covers are 0."""
    out = np.zeros(intervals)
    used: list[int] = []
    end = start + intervals * INTERVAL
    seen_starts = set()
    for f in Forecast.objects.filter(
        series_key=series_key, start__gte=start - timedelta(days=1), start__lt=end
    ).order_by("start", "-issued_at", "-pk"):
        if f.start in seen_starts:
            continue  # an older issue of the same day
        seen_starts.add(f.start)
        offset = int((f.start - start) / INTERVAL)
        for i, v in enumerate(f.values_wh):
            if 0 <= offset + i < intervals:
                out[offset + i] = v
        used.append(f.pk)
    return out, used


def forecast_values_at(*, series_keys: list[str], at: datetime) -> dict[str, int]:
    """The Wh forecast for the interval starting at `at` of each series, from the latest issued
    forecast (started in the two days up to `at`) that covers it; series without one are left
    out. One query."""
    latest: dict[str, int] = {}
    for key, start, step, values in (
        Forecast.objects.filter(
            series_key__in=series_keys, start__lte=at, start__gt=at - timedelta(days=2)
        )
        .order_by("series_key", "-issued_at", "-pk")
        .values_list("series_key", "start", "step_seconds", "values_wh")
    ):
        if key in latest:
            continue
        index = int((at - start).total_seconds()) // step
        if 0 <= index < len(values):
            latest[key] = int(values[index])
    return latest


def current_plan() -> DispatchPlan | None:
    return DispatchPlan.objects.exclude(status=DispatchPlan.Status.SUPERSEDED).first()


def command_status_counts(*, plan: DispatchPlan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in plan.commands.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def ev_charging_sessions(*, device_ids: list[int]) -> dict[int, int | None]:
    """For every device among `device_ids` that an OCPP charge point drives: the energy (Wh)
    its running session has delivered so far (the latest energy register of the session's meter
    values minus its meter start), or None when no session is running. Devices without a
    charge point are left out."""
    drivers = dict(
        ChargePoint.objects.filter(device_id__in=device_ids).values_list("pk", "device_id")
    )
    out: dict[int, int | None] = dict.fromkeys(drivers.values())
    for session in ChargingSession.objects.filter(
        charge_point_id__in=drivers, stopped_at__isnull=True
    ).order_by("started_at"):
        energy = (
            ChargePointMeterValue.objects.filter(session=session, energy_wh__isnull=False)
            .order_by("-timestamp")
            .values_list("energy_wh", flat=True)
            .first()
        )
        delivered = max(0, energy - session.meter_start_wh) if energy is not None else 0
        out[drivers[session.charge_point_id]] = delivered
    return out


def unresponsive_devices() -> list[FlexibleDevice]:
    """Devices flagged for missing their commands (left out of dispatch), oldest flag first."""
    return list(
        FlexibleDevice.objects.filter(unresponsive_since__isnull=False).order_by(
            "unresponsive_since", "serial"
        )
    )


def recent_alerts(*, since: datetime, limit: int = 50) -> list[GridAlert]:
    return list(GridAlert.objects.filter(interval_start__gte=since)[:limit])


def assessments(*, start: datetime, end: datetime, source: str) -> list[StabilityAssessment]:
    return list(
        StabilityAssessment.objects.filter(
            interval_start__gte=start, interval_start__lt=end, source=source
        ).order_by("interval_start")
    )


def model_choices() -> list[ForecastModelChoice]:
    return list(ForecastModelChoice.objects.order_by("series_key"))


def dr_events_with_performance(*, limit: int = 20) -> list[DREvent]:
    return list(
        DREvent.objects.prefetch_related(
            Prefetch(
                "participations",
                queryset=DRParticipation.objects.select_related("connection_point"),
            )
        ).order_by("-start")[:limit]
    )


def pending_commands(*, older_than: timedelta) -> QuerySet[DeviceCommand]:
    from django.utils import timezone

    return DeviceCommand.objects.filter(
        status=DeviceCommand.Status.SENT, sent_at__lt=timezone.now() - older_than
    )


def latest_transformer_loading() -> dict[str, dict]:
    """Per transformer: loading from the latest measured power flow (empty before the first)."""
    latest = (
        StabilityAssessment.objects.filter(source="measured").order_by("-interval_start").first()
    )
    if latest is None:
        return {}
    return {
        name: {**data, "interval_start": latest.interval_start.isoformat()}
        for name, data in latest.transformers.items()
    }


def latest_measured_assessment() -> StabilityAssessment | None:
    return StabilityAssessment.objects.filter(source="measured").order_by("-interval_start").first()


def lowest_voltages(assessment: StabilityAssessment | None, n: int = 5) -> list[tuple[str, float]]:
    if assessment is None:
        return []
    return sorted(assessment.bus_voltages.items(), key=lambda kv: kv[1])[:n]


def community_actual_wh(*, start: datetime, end: datetime) -> dict[datetime, tuple[int, int]]:
    """Community total validated (import, export) Wh per interval in [start, end)."""
    return {t: (i, e) for t, i, e in interval_totals(start=start, end=end)}


def dashboard_chart_data(*, now: datetime) -> dict:
    from apps.core.intervals import floor_interval

    day_start = floor_interval(now, timedelta(days=1))
    out: dict = {"forecast_vs_actual": {}, "dispatch": {}}
    forecast = (
        Forecast.objects.filter(series_key="community:load", start__lte=now)
        .order_by("-start", "-issued_at")
        .first()
    )
    if forecast is not None:
        step = timedelta(seconds=forecast.step_seconds)
        labels = [(forecast.start + i * step) for i in range(len(forecast.values_wh))]
        actual = community_actual_wh(start=labels[0], end=labels[-1] + step) if labels else {}
        out["forecast_vs_actual"] = {
            "labels": [t.isoformat() for t in labels],
            "forecast_wh": forecast.values_wh,
            "actual_wh": [actual.get(t, (None, None))[0] for t in labels],
            "method": forecast.method,
            "issued_at": forecast.issued_at.isoformat(),
        }
    plan = current_plan()
    if plan is not None:
        step = timedelta(seconds=plan.step_seconds)
        capacities = {t.name: t.capacity_w for t in Transformer.objects.all()}
        out["dispatch"] = {
            "labels": [(plan.start + i * step).isoformat() for i in range(plan.intervals)],
            "planned_w": plan.transformer_flows_w,
            "unmanaged_w": plan.unmanaged_flows_w,
            "capacity_w": {
                name: watts
                for name, watts in capacities.items()
                if name in plan.transformer_flows_w
            },
            "status": plan.status,
        }
    out["day_start"] = day_start.isoformat()
    return out


def charge_point_credentials_valid(*, ocpp_id: str, password: str) -> bool:
    """HTTP Basic check of a connecting charger (OCPP security profile 1)."""
    from django.contrib.auth.hashers import check_password

    cp = ChargePoint.objects.filter(ocpp_id=ocpp_id).only("password_hash").first()
    return cp is not None and bool(password) and check_password(password, cp.password_hash)


def charging_token_active(*, token: str) -> ChargingToken | None:
    """The member's active token (OCPP Authorize), or None when unknown or blocked."""
    return ChargingToken.objects.select_related("member").filter(token=token, active=True).first()


def charge_point_charging_limits(
    *, ocpp_id: str, now: datetime
) -> tuple[datetime, int, list[int]] | None:
    """(start, step seconds, charging limits in W ≥ 0 from `start`) for the charger from the
    current dispatch plan's command for its device — 0 W during a DR event its site opted in
    to — or None when there is none."""
    cp = ChargePoint.objects.select_related("device").filter(ocpp_id=ocpp_id).first()
    if cp is None or cp.device is None:
        return None
    cmd = (
        DeviceCommand.objects.filter(device=cp.device)
        .exclude(status=DeviceCommand.Status.SUPERSEDED)
        .exclude(plan__status=DispatchPlan.Status.SUPERSEDED)
        .select_related("plan")
        .order_by("-plan__created_at", "-plan_id")
        .first()
    )
    if cmd is None:
        return None
    step = cmd.plan.step_seconds
    skip = max(0, int((now - cmd.plan.start).total_seconds() // step))
    limits = [max(0, int(w)) for w in cmd.setpoints_w[skip:]]
    if not limits:
        return None
    start = cmd.plan.start + timedelta(seconds=skip * step)
    # During a DR event the site opted in to, the charger pauses.
    events = DRParticipation.objects.filter(
        connection_point_id=cp.device.connection_point_id,
        opt=DRParticipation.Opt.OPT_IN,
        event__status__in=[DREvent.Status.PUBLISHED, DREvent.Status.ACTIVE],
        event__end__gt=start,
    ).values_list("event__start", "event__end")
    for ev_start, ev_end in events:
        for i in range(len(limits)):
            t = start + timedelta(seconds=i * step)
            if ev_start <= t < ev_end:
                limits[i] = 0
    return start, step, limits


CHARGE_POINT_SILENCE = timedelta(minutes=10)  # two missed heartbeats (interval 300 s)


def charge_points_status(*, now: datetime) -> dict:
    """Staff view of the OCPP chargers: each with `online` (connected and heard from in the last
    ten minutes), and how many are online."""
    rows = []
    for cp in charge_points_overview():
        online = (
            cp.status == ChargePoint.Status.ONLINE
            and cp.last_seen_at is not None
            and now - cp.last_seen_at <= CHARGE_POINT_SILENCE
        )
        rows.append({"charge_point": cp, "online": online})
    return {"rows": rows, "online": sum(r["online"] for r in rows), "total": len(rows)}


def charge_points_overview() -> QuerySet[ChargePoint]:
    """Every registered charger with its device and the member of its site."""
    return ChargePoint.objects.select_related("device__connection_point__member").order_by(
        "ocpp_id"
    )


def openadr_ven_lookup(*, ven_id: str) -> dict | None:
    """What openleadr's `ven_lookup` wants: ven_id, ven_name, fingerprint, registration_id."""
    ven = OpenADRVen.objects.filter(ven_id=ven_id).first()
    if ven is None:
        return None
    return {
        "ven_id": ven.ven_id,
        "ven_name": ven.ven_name,
        "fingerprint": ven.fingerprint or None,
        "registration_id": ven.registration_id or None,
    }


def openadr_events_due(*, now: datetime) -> list[tuple[str, DREvent]]:
    """(venID, event) for every registered VEN whose site takes part in a published or active
    event that the VTN has not queued for it at the event's current modification number."""
    queued = set(
        OpenADREventDelivery.objects.values_list("ven_id", "event_id", "modification_number")
    )
    due = []
    vens = OpenADRVen.objects.exclude(registration_id="").exclude(connection_point=None)
    for ven in vens:
        parts = DRParticipation.objects.filter(
            connection_point_id=ven.connection_point_id,
            event__status__in=[DREvent.Status.PUBLISHED, DREvent.Status.ACTIVE],
            event__end__gt=now,
        ).select_related("event")
        for part in parts:
            event = part.event
            if (ven.pk, event.pk, event.modification_number) not in queued:
                due.append((ven.ven_id, event))
    return due


def openadr_cancellations_due(*, now: datetime) -> list[tuple[str, DREvent]]:
    """(venID, event) for every cancelled, not yet ended event the VTN had queued for a VEN and
    whose cancellation (the event's current modification number) it has not sent yet."""
    sent = OpenADREventDelivery.objects.filter(
        event__status=DREvent.Status.CANCELLED, event__end__gt=now
    ).select_related("ven", "event")
    done = {(d.ven_id, d.event_id, d.modification_number) for d in sent}
    due: dict[tuple[int, int], tuple[str, DREvent]] = {}
    for d in sent:
        if (d.ven_id, d.event_id, d.event.modification_number) not in done:
            due[(d.ven_id, d.event_id)] = (d.ven.ven_id, d.event)
    return list(due.values())


VEN_SILENCE = timedelta(minutes=5)  # the demo VENs report every minute


def openadr_vens_status(*, now: datetime) -> dict:
    """Staff view of the VENs: registered, `online` when heard from in the last five minutes."""
    rows = []
    for ven in openadr_vens_overview():
        online = bool(
            ven.registration_id
            and ven.last_seen_at is not None
            and now - ven.last_seen_at <= VEN_SILENCE
        )
        rows.append({"ven": ven, "online": online})
    return {"rows": rows, "online": sum(r["online"] for r in rows), "total": len(rows)}


def openadr_vens_overview() -> QuerySet[OpenADRVen]:
    return OpenADRVen.objects.select_related("connection_point").order_by("ven_name")


def flexible_devices_by_site() -> dict[int, list[FlexibleDevice]]:
    """Active flexible devices grouped by connection point id."""
    out: dict[int, list[FlexibleDevice]] = {}
    for device in FlexibleDevice.objects.filter(active=True).order_by("serial"):
        out.setdefault(device.connection_point_id, []).append(device)
    return out


def staff_queue_counts() -> dict[str, int]:
    """The staff home's grid work: DR events still in draft (to publish or cancel)."""
    return {"dr_events_to_publish": DREvent.objects.filter(status=DREvent.Status.DRAFT).count()}


def member_sites(*, member) -> list[ConnectionPoint]:
    """The member's sites (connection points) in code order."""
    return list(
        ConnectionPoint.objects.filter(member=member).select_related("transformer").order_by("code")
    )


def transformers_all() -> list[Transformer]:
    return list(Transformer.objects.order_by("name"))
