"""Demo extras for the grid (called by `manage.py demo_cooperative`, see docs/demo.md).

Idempotent. Adds what the base loader does not: the LV cables of each transformer area (for the
power flow), the flexible devices (batteries and EV chargers, addressed by their meter serial),
an OCPP charge point per EV charger plus a spare one and the members' RFID tokens, an OpenADR
VEN per site with a flexible device plus a spare one, and two demand-response events — one
yesterday evening, measured against the metered history, and one tomorrow evening, published so
members can answer it.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction

from apps.grid.models import (
    ChargePoint,
    ChargingToken,
    DREvent,
    DRParticipation,
    FlexibleDevice,
    GridLine,
    OpenADRVen,
)

logger = logging.getLogger(__name__)


def _lines(context) -> int:
    from apps.demo import profiles

    grid = profiles.grid_data()
    original_lv = grid["transformer"]["lv_bus"]
    area_of_bus = {}
    specs = {t.name: t for t in context.community.transformers}
    for trafo in context.transformers:
        spec = specs.get(trafo.name)
        if spec is None:
            continue
        for bus in spec.buses:
            area_of_bus[bus] = trafo
        updates = {"lv_bus_name": f"{trafo.name} LV", "std_type": spec.std_type}
        if any(getattr(trafo, k) != v for k, v in updates.items()):
            for k, v in updates.items():
                setattr(trafo, k, v)
            trafo.save(update_fields=list(updates))
    created = 0
    for line in grid["lines"]:
        a, b = line["from"], line["to"]
        trafo = area_of_bus.get(a if a != original_lv else b) or area_of_bus.get(b)
        if trafo is None:
            continue
        a = trafo.lv_bus if a == original_lv else a
        b = trafo.lv_bus if b == original_lv else b
        _, was_created = GridLine.objects.update_or_create(
            name=line["name"],
            defaults={
                "transformer": trafo,
                "from_bus": a,
                "to_bus": b,
                "length_km": line["length_km"],
                "std_type": line["std_type"],
                "max_i_ka": line.get("max_i_ka"),
            },
        )
        created += was_created
    return created


def _devices(context) -> int:
    created = 0
    for member in context.members:
        spec = context.spec_for(member)
        cp = context.connection_points.get(member.pk)
        if cp is None:
            continue
        meters = {m.asset_kind: m for m in context.meters_by_member.get(member.pk, [])}
        if spec.has_battery and "battery" in meters:
            capacity = int(spec.battery_kwh * 1000)
            _, c = FlexibleDevice.objects.update_or_create(
                serial=meters["battery"].serial,
                defaults={
                    "kind": FlexibleDevice.Kind.BATTERY,
                    "connection_point": cp,
                    "meter": meters["battery"],
                    "max_charge_w": int(spec.battery_kw * 1000),
                    "max_discharge_w": int(spec.battery_kw * 1000),
                    "capacity_wh": capacity,
                    "min_soc_wh": capacity // 10,
                    "efficiency": round(spec.battery_efficiency**0.5, 4),
                },
            )
            FlexibleDevice.objects.filter(serial=meters["battery"].serial, soc_wh=0).update(
                soc_wh=capacity // 2
            )
            created += c
        if spec.has_ev and "ev" in meters:
            _, c = FlexibleDevice.objects.update_or_create(
                serial=meters["ev"].serial,
                defaults={
                    "kind": FlexibleDevice.Kind.EV,
                    "connection_point": cp,
                    "meter": meters["ev"],
                    "max_charge_w": int(spec.ev_kw * 1000),
                    "daily_energy_wh": int(min(spec.ev_kw * 2, 20) * 1000),
                    "available_from_hour": 16,  # UTC: plugged in after work
                    "deadline_hour": 24,
                },
            )
            created += c
    return created


def _charge_points(context) -> int:
    """One OCPP charge point per EV charger (driven by `ocpp_charger_simulator`), one spare that
    no simulator drives, and an RFID token for every member with an EV and the showcase member."""
    from apps.demo.keys import (
        DEMO_SPARE_CHARGE_POINT,
        demo_charge_point_id,
        demo_charger_password,
        demo_charging_token,
    )
    from apps.grid.services.ocpp import charge_point_register, charging_token_issue

    created = 0
    registered = set(ChargePoint.objects.values_list("ocpp_id", flat=True))
    evs = FlexibleDevice.objects.filter(kind=FlexibleDevice.Kind.EV).select_related(
        "connection_point__member"
    )
    members = {context.showcase_member.pk: context.showcase_member}
    for device in evs:
        members[device.connection_point.member.pk] = device.connection_point.member
        ocpp_id = demo_charge_point_id(device.serial)
        if ocpp_id not in registered:
            charge_point_register(
                ocpp_id=ocpp_id,
                password=demo_charger_password(ocpp_id),
                device=device,
                actor=context.staff_user,
            )
            created += 1
    if DEMO_SPARE_CHARGE_POINT not in registered:
        charge_point_register(
            ocpp_id=DEMO_SPARE_CHARGE_POINT,
            password=demo_charger_password(DEMO_SPARE_CHARGE_POINT),
            actor=context.staff_user,
        )
        created += 1
    tokens = set(ChargingToken.objects.values_list("token", flat=True))
    for member in members.values():
        token = demo_charging_token(member.membership_number)
        if token not in tokens:
            charging_token_issue(member=member, token=token, actor=context.staff_user)
    return created


def _vens(context) -> int:
    """One pre-provisioned OpenADR VEN per site with a battery or an EV charger (driven by
    `openadr_ven_simulator`) and a spare VEN for the showcase member's site that no simulator
    drives."""
    from apps.demo.keys import DEMO_SPARE_VEN, demo_ven_name
    from apps.grid.services.openadr import openadr_ven_provision

    provisioned = set(OpenADRVen.objects.values_list("ven_name", flat=True))
    created = 0
    sites = {d.connection_point for d in FlexibleDevice.objects.select_related("connection_point")}
    for site in sorted(sites, key=lambda cp: cp.code):
        name = demo_ven_name(site.code)
        if name not in provisioned:
            openadr_ven_provision(ven_name=name, connection_point=site, actor=context.staff_user)
            created += 1
    showcase = context.connection_points.get(context.showcase_member.pk)
    if DEMO_SPARE_VEN not in provisioned:
        openadr_ven_provision(
            ven_name=DEMO_SPARE_VEN, connection_point=showcase, actor=context.staff_user
        )
        created += 1
    return created


def _events(context) -> int:
    from django.conf import settings

    from apps.core.exceptions import ApplicationError
    from apps.grid.services import (
        dr_event_create,
        dr_event_measure,
        dr_event_publish,
        dr_events_advance,
        dr_opt_set,
    )

    tz = ZoneInfo(settings.COOPERATIVE_TIME_ZONE)
    today = context.now.astimezone(tz).date()
    created = 0
    targets = list(context.connection_points.values())[:24]
    showcase_cp = context.connection_points.get(context.showcase_member.pk)
    if showcase_cp is not None and showcase_cp not in targets:
        targets.append(showcase_cp)
    if not targets:
        return 0

    def window(day) -> tuple[datetime, datetime]:
        start = datetime.combine(day, time(18, 0), tzinfo=tz).astimezone(ZoneInfo("UTC"))
        return start, start + timedelta(hours=2)

    past_id = f"demo-{today - timedelta(days=1):%Y%m%d}"
    if not DREvent.objects.filter(event_id=past_id).exists():
        start, end = window(today - timedelta(days=1))
        if end <= context.now:
            event = dr_event_create(
                start=start,
                end=end,
                connection_point_ids=[cp.pk for cp in targets],
                signal_values=[2],
                target_reduction_w=20_000,
                event_id=past_id,
                actor=context.staff_user,
            )
            dr_event_publish(event_pk=event.pk, actor=context.staff_user)
            for i, cp in enumerate(targets):
                opt = DRParticipation.Opt.OPT_OUT if i % 4 == 3 else DRParticipation.Opt.OPT_IN
                dr_opt_set(member=cp.member, event_pk=event.pk, opt=opt)
            dr_events_advance(now=end)
            try:
                dr_event_measure(event_pk=event.pk, actor=context.staff_user)
            except ApplicationError as exc:
                logger.warning("demo DR event not measured: %s", exc.message)
            created += 1
    next_id = f"demo-{today + timedelta(days=1):%Y%m%d}"
    if not DREvent.objects.filter(event_id=next_id).exists():
        start, end = window(today + timedelta(days=1))
        event = dr_event_create(
            start=start,
            end=end,
            connection_point_ids=[cp.pk for cp in targets],
            signal_values=[1, 2, 2, 2, 2, 2, 2, 1],
            target_reduction_w=20_000,
            event_id=next_id,
            actor=context.staff_user,
        )
        dr_event_publish(event_pk=event.pk, actor=context.staff_user)
        created += 1
    return created


def load(context) -> None:
    context.created["grid_lines"] = _lines(context)
    context.created["flexible_devices"] = _devices(context)
    context.created["charge_points"] = _charge_points(context)
    context.created["openadr_vens"] = _vens(context)
    context.created["dr_events"] = _events(context)
    # Forecasts, the plan and the power flow are computed by the grid worker once the demo data
    # is committed (the beat schedules them too).
    midnight = context.now.replace(hour=0, minute=0, second=0, microsecond=0)
    transaction.on_commit(lambda: _enqueue(midnight - timedelta(minutes=1)))


def _enqueue(before_today: datetime) -> None:
    try:
        from apps.grid.tasks import forecasts_schedule_task, stability_measured_task

        # As issued yesterday (today's forecast, for forecast vs actual), then as of now
        # (tomorrow's, for the plan and the forecast power flow); meters follow with the beat.
        forecasts_schedule_task.delay(aggregates_only=True, now=before_today.isoformat())
        forecasts_schedule_task.delay(aggregates_only=True)
        stability_measured_task.delay()
    except Exception:  # noqa: BLE001 - no broker: beat runs them anyway
        logger.warning("grid tasks not enqueued; beat will run them", exc_info=True)
