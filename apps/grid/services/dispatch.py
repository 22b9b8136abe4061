"""Dispatch services: build the LP from forecasts and devices, store the plan and one command
per device, publish the commands over MQTT, track acknowledgements, re-plan on change."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.intervals import INTERVAL, ensure_utc, floor_interval
from apps.core.types import Actor
from apps.grid import conf, realtime
from apps.grid.dispatch.lp import Battery, FlexibleLoad, Problem, solve, unmanaged
from apps.grid.lock_objects import (
    current_dispatch_plans_lock,
    device_command_lock_for_ack,
    device_commands_lock,
    device_commands_lock_for_numbering,
    flexible_devices_lock,
    plan_commands_lock_for_supersede,
)
from apps.grid.models import DeviceCommand, DispatchPlan, FlexibleDevice, Transformer
from apps.grid.selectors import ev_charging_sessions, forecast_values

logger = logging.getLogger(__name__)
DAY = timedelta(days=1)
Cmd = DeviceCommand.Status
REPLAN_EVERY = timedelta(hours=1)
TARIFF_SETTINGS = (
    "GRID_PRICE_DAY",
    "GRID_PRICE_PEAK",
    "GRID_PRICE_NIGHT",
    "GRID_PEAK_HOURS",
    "GRID_NIGHT_HOURS",
    "GRID_FEED_IN_PRICE",
)


def tariff_prices(*, start: datetime, intervals: int) -> tuple[np.ndarray, np.ndarray]:
    """Forecast import/feed-in prices per interval: the configured time-of-use tariff."""
    tz = ZoneInfo(settings.COOPERATIVE_TIME_ZONE)
    peak, night = conf.get("GRID_PEAK_HOURS"), conf.get("GRID_NIGHT_HOURS")
    out = np.empty(intervals)
    for i in range(intervals):
        hour = (start + i * INTERVAL).astimezone(tz).hour
        if peak[0] <= hour < peak[1]:
            out[i] = conf.get("GRID_PRICE_PEAK")
        elif night[0] <= hour < night[1]:
            out[i] = conf.get("GRID_PRICE_NIGHT")
        else:
            out[i] = conf.get("GRID_PRICE_DAY")
    return out, np.full(intervals, conf.get("GRID_FEED_IN_PRICE"))


def _inputs(start: datetime, intervals: int):
    """Transformer capacities and base net load (W) from the latest forecasts, devices, prices,
    and a fingerprint of all of it (a new plan is made only when it changes)."""
    transformers = list(Transformer.objects.order_by("pk"))
    capacity = {t.name: float(t.capacity_w) for t in transformers}
    base: dict[str, np.ndarray] = {}
    used: list[int] = []
    factor = 3600 / INTERVAL.total_seconds()  # Wh per interval → W
    for t in transformers:
        net = np.zeros(intervals)
        for kind, sign in (("load", 1.0), ("pv", -1.0)):
            values, ids = forecast_values(
                series_key=f"transformer:{t.pk}:{kind}", start=start, intervals=intervals
            )
            net += sign * values * factor
            used += ids
        base[t.name] = net
    devices = list(
        FlexibleDevice.objects.filter(active=True, unresponsive_since__isnull=True)
        .select_related("connection_point__transformer")
        .order_by("pk")
    )
    sessions = ev_charging_sessions(
        device_ids=[d.pk for d in devices if d.kind == FlexibleDevice.Kind.EV]
    )
    prices, feed_in = tariff_prices(start=start, intervals=intervals)
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "forecasts": used,
                "capacity": capacity,
                "devices": [
                    [
                        d.pk,
                        d.max_charge_w,
                        d.max_discharge_w,
                        d.capacity_wh,
                        d.soc_wh,
                        d.daily_energy_wh,
                        d.available_from_hour,
                        d.deadline_hour,
                        d.ev_plugged,
                        # a session's delivered energy by the kWh: re-plan as it fills up
                        _session_kwh(sessions, d.pk),
                    ]
                    for d in devices
                ],
                "tariff": [conf.get(n) for n in TARIFF_SETTINGS],
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    return capacity, base, devices, sessions, prices, feed_in, fingerprint


def _session_kwh(sessions: dict[int, int | None], device_id: int) -> int | None:
    if device_id not in sessions:
        return -1  # no charge point drives it
    delivered = sessions[device_id]
    return None if delivered is None else delivered // 1000


def _problem(start, intervals, capacity, base, devices, sessions, prices, feed_in) -> Problem:
    per_hour = int(timedelta(hours=1) / INTERVAL)
    batteries, loads = [], []
    for d in devices:
        trafo = d.connection_point.transformer.name
        if d.kind == FlexibleDevice.Kind.BATTERY:
            batteries.append(
                Battery(
                    id=d.serial,
                    transformer=trafo,
                    capacity_wh=d.capacity_wh,
                    soc_wh=min(max(d.soc_wh, d.min_soc_wh), d.capacity_wh),
                    max_charge_w=d.max_charge_w,
                    max_discharge_w=d.max_discharge_w,
                    efficiency=d.efficiency,
                    min_soc_wh=d.min_soc_wh,
                )
            )
        elif (window := _ev_window(d, sessions.get(d.pk, -1), per_hour, intervals)) is not None:
            energy_wh, available_from, deadline = window
            loads.append(
                FlexibleLoad(
                    id=d.serial,
                    transformer=trafo,
                    max_power_w=d.max_charge_w,
                    energy_wh=energy_wh,
                    available_from=available_from,
                    deadline=deadline,
                    efficiency=d.efficiency if d.efficiency > 0 else 1.0,
                )
            )
    return Problem(
        INTERVAL.total_seconds() / 3600, prices, feed_in, capacity, base, batteries, loads
    )


def _ev_window(
    d: FlexibleDevice, delivered: int | None, per_hour: int, intervals: int
) -> tuple[int, int, int] | None:
    """(energy Wh, available from, deadline) of an EV charger in the plan, or None for no
    charging set point. A charger an OCPP charge point drives charges only in a running session:
    from now, for what the day's energy still lacks after what the session delivered. A charger
    that reported (signed MQTT status) no car plugged in gets nothing; one that reported a car
    plugged in may charge from now. Otherwise its configured daily window. `delivered`: the
    running session's energy so far, None without a session, -1 when no charge point drives
    the device."""
    deadline = min(d.deadline_hour * per_hour, intervals) or intervals
    if delivered is None or d.ev_plugged is False:
        return None
    if delivered >= 0:
        energy = d.daily_energy_wh - delivered
        return (energy, 0, deadline) if energy > 0 else None
    if d.daily_energy_wh <= 0:
        return None
    available = 0 if d.ev_plugged else min(d.available_from_hour * per_hour, intervals)
    return d.daily_energy_wh, available, deadline


def _money(x: float) -> Decimal:
    return Decimal(str(round(x, 4)))


@transaction.atomic
def dispatch_plan_create(
    *, start: datetime | None = None, force: bool = False, actor: Actor = None
) -> DispatchPlan | None:
    """Plan the next 24 h from `start` (default: the next interval). Returns None when the
    inputs did not change since the current plan (unless `force`)."""
    start = (
        floor_interval(ensure_utc(start)) if start else floor_interval(timezone.now()) + INTERVAL
    )
    intervals = int(DAY / INTERVAL)
    capacity, base, devices, sessions, prices, feed_in, fingerprint = _inputs(start, intervals)
    if not capacity:
        raise ApplicationError("There is no transformer to plan for.")
    current = current_dispatch_plans_lock()
    # Re-plan when the forecasts, devices or prices changed, or to roll the horizon hourly.
    if not force and any(
        p.inputs_fingerprint == fingerprint and start - p.start < REPLAN_EVERY for p in current
    ):
        return None
    problem = _problem(start, intervals, capacity, base, devices, sessions, prices, feed_in)
    plan_result = solve(problem)
    before = unmanaged(problem)
    status = (
        DispatchPlan.Status.OPTIMAL
        if plan_result.status == "optimal"
        else DispatchPlan.Status.FALLBACK
    )
    for old in current:
        old.transition_to(DispatchPlan.Status.SUPERSEDED, actor=actor)
        for cmd in plan_commands_lock_for_supersede(old):
            cmd.transition_to(Cmd.SUPERSEDED, actor=actor)
    plan = DispatchPlan.objects.create(
        start=start,
        intervals=intervals,
        status=status,
        solver_status=plan_result.status,
        cost=_money(plan_result.cost),
        unmanaged_cost=_money(before.cost),
        solve_seconds=plan_result.solve_seconds,
        binding=plan_result.binding,
        message=plan_result.message,
        inputs_fingerprint=fingerprint,
        transformer_flows_w={
            k: np.rint(v).astype(int).tolist() for k, v in plan_result.transformer_flow_w.items()
        },
        unmanaged_flows_w={
            k: np.rint(v).astype(int).tolist() for k, v in before.transformer_flow_w.items()
        },
        prices=prices.round(5).tolist(),
    )
    DeviceCommand.objects.bulk_create(
        [
            DeviceCommand(
                plan=plan,
                device=d,
                setpoints_w=np.rint(plan_result.setpoints_w[d.serial]).astype(int).tolist(),
            )
            for d in devices
            if d.serial in plan_result.setpoints_w
        ]
    )
    audit_log_write(
        event=AuditEvent.DISPATCH_PLAN_CREATED,
        actor=actor,
        target=plan,
        details={
            "status": plan.status,
            "cost": str(plan.cost),
            "unmanaged_cost": str(plan.unmanaged_cost),
            "binding": plan.binding[:5],
        },
    )
    transaction.on_commit(lambda: _enqueue_publish(plan.pk))
    return plan


def _enqueue_publish(plan_id: int) -> None:
    from apps.grid.tasks import device_commands_publish_task

    try:
        device_commands_publish_task.delay(plan_id)
    except Exception:  # noqa: BLE001 - the periodic re-plan/publish sweep picks it up
        logger.warning("could not enqueue publishing of plan %s", plan_id)


def _number_commands(plan: DispatchPlan) -> list[DeviceCommand]:
    """Give each pending command of the plan its device's next sequence number and an expiry
    (the plan's end), once; returns the pending commands."""
    expires = plan.start + timedelta(seconds=plan.step_seconds * plan.intervals)
    with transaction.atomic():
        pending = device_commands_lock_for_numbering(
            list(plan.commands.filter(status=Cmd.PENDING).values_list("pk", flat=True))
        )
        for cmd in pending:
            if cmd.seq is None:
                last = (
                    DeviceCommand.objects.filter(device=cmd.device, seq__isnull=False)
                    .order_by("-seq")
                    .values_list("seq", flat=True)
                    .first()
                )
                cmd.seq = max(last or 0, cmd.device.last_seq) + 1
                cmd.expires_at = expires
                cmd.save(update_fields=["seq", "expires_at"])
                FlexibleDevice.objects.filter(pk=cmd.device_id, last_seq__lt=cmd.seq).update(
                    last_seq=cmd.seq
                )
    return pending


def device_commands_publish(*, plan_id: int) -> int:
    """Publish the plan's pending commands (QoS 1), each signed by the cooperative's command
    key with the device's next sequence number and an expiry; mark those the broker accepted
    as sent."""
    from apps.grid.command_signing import COMMAND, sign_message
    from apps.grid.commands_mqtt import CommandMessage, cooperative_command_key, publish_commands

    plan = DispatchPlan.objects.get(pk=plan_id)
    pending = _number_commands(plan)
    key = cooperative_command_key()
    messages = [
        CommandMessage(
            serial=c.device.serial,
            payload=sign_message(
                COMMAND,
                {
                    "command_id": str(c.command_id),
                    "serial": c.device.serial,
                    "seq": c.seq,
                    "expires_at": c.expires_at.isoformat() if c.expires_at else None,
                    "plan": plan.pk,
                    "start": plan.start.isoformat(),
                    "step_seconds": plan.step_seconds,
                    "setpoints_w": c.setpoints_w,
                },
                key,
            ),
        )
        for c in pending
    ]
    published = set(publish_commands(messages))
    now = timezone.now()
    sent = 0
    with transaction.atomic():
        for cmd in device_commands_lock([c.pk for c in pending]):
            if cmd.device.serial not in published:
                continue
            if cmd.status == Cmd.PENDING:
                cmd.sent_at = now
                cmd.transition_to(Cmd.SENT, actor=None, update_fields=["sent_at"])
            elif cmd.sent_at is None:
                continue  # superseded or expired meanwhile
            sent += 1  # (its ack may have been recorded already: see device_command_acknowledge)
    return sent


def dr_cancellation_enqueue(event_pk: int) -> None:
    """After commit of a cancellation: send it to the event's devices over MQTT (Celery)."""
    from apps.grid.tasks import dr_cancellation_publish_task

    try:
        dr_cancellation_publish_task.delay(event_pk)
    except Exception:  # noqa: BLE001 - the broker is down: the devices keep their set points
        logger.warning("could not enqueue the MQTT cancellation of DR event %s", event_pk)


def dr_cancellation_publish(*, event_pk: int) -> list[str]:
    """Tell every flexible device of the cancelled event's sites over MQTT, with a command signed
    by the cooperative's command key (`{"command_id", "serial", "seq", "expires_at",
    "dr_event", "status": "cancelled", "modification_number"}`, the device's next sequence
    number, expiring at the event's end); returns the serials the broker accepted it for."""
    import uuid

    from apps.grid.command_signing import COMMAND, sign_message
    from apps.grid.commands_mqtt import CommandMessage, cooperative_command_key, publish_commands
    from apps.grid.models import DREvent

    event = DREvent.objects.get(pk=event_pk)
    if event.status != DREvent.Status.CANCELLED:
        raise ApplicationError("Only a cancelled event's cancellation is sent.")
    ids = FlexibleDevice.objects.filter(
        connection_point__dr_participations__event=event, active=True
    ).values_list("pk", flat=True)
    key = cooperative_command_key()
    messages = []
    with transaction.atomic():
        for device in flexible_devices_lock(list(ids)):
            last = (
                DeviceCommand.objects.filter(device=device, seq__isnull=False)
                .order_by("-seq")
                .values_list("seq", flat=True)
                .first()
            )
            device.last_seq = max(last or 0, device.last_seq) + 1
            device.save(update_fields=["last_seq"])
            doc = {
                "command_id": str(uuid.uuid4()),
                "serial": device.serial,
                "seq": device.last_seq,
                "expires_at": event.end.isoformat(),
                "dr_event": event.event_id,
                "status": "cancelled",
                "modification_number": event.modification_number,
            }
            messages.append(
                CommandMessage(serial=device.serial, payload=sign_message(COMMAND, doc, key))
            )
    return publish_commands(messages)


@transaction.atomic
def device_command_acknowledge(
    *, serial: str, command_id: str, accepted: bool, detail: dict | None = None
) -> DeviceCommand | None:
    """Record a device's acknowledgement. `detail` is the ack document as received: it must be
    signed by the device's key (its meter's address) and name the command's serial and sequence
    number. Unsigned, forged, foreign, unknown or repeated acks change nothing. An ack that
    arrives before the publisher has marked its command sent is recorded all the same."""
    from apps.grid.command_signing import ACK, message_signer

    cmd = device_command_lock_for_ack(serial=serial, command_id=command_id)
    if cmd is None:
        logger.info("ack for unknown command %s from %s", command_id, serial)
        return None
    doc = detail or {}
    signer = message_signer(ACK, doc)
    device_address = cmd.device.meter.address if cmd.device.meter else ""
    if (
        signer is None
        or not device_address
        or signer.lower() != device_address.lower()
        or doc.get("command_id") != str(cmd.command_id)
        or doc.get("serial") != serial
        or doc.get("seq") != cmd.seq
    ):
        logger.warning("refused an unsigned or mismatched ack for %s from %s", command_id, serial)
        _ack_quarantine(serial=serial, doc=doc, signer=signer, device_address=device_address,
                        cmd=cmd)  # fmt: skip
        audit_log_write(
            event=AuditEvent.DEVICE_COMMAND_ACK_REFUSED,
            target=cmd,
            details={"serial": serial, "signed": signer is not None},
        )
        return None
    target = Cmd.ACKNOWLEDGED if accepted else Cmd.REJECTED
    via: tuple[str, ...] = ()
    now = timezone.now()
    if cmd.status == Cmd.PENDING and cmd.seq is not None:
        # The publisher marks a command sent only after the broker's PUBACK, in its own
        # transaction; a quick device's ack can be here first. The device's signature over this
        # command's id and sequence number proves the command reached it: sent, then answered.
        via = (Cmd.SENT,)
        cmd.sent_at = now
    elif cmd.status != Cmd.SENT:
        return cmd  # already answered, superseded or expired: idempotent
    flexible_device_heard(device_id=cmd.device_id)
    cmd.acked_at = now
    cmd.ack_detail = detail or {}
    cmd.transition_to(
        target,
        via=via,
        actor=None,
        event=(
            AuditEvent.DEVICE_COMMAND_ACKNOWLEDGED
            if accepted
            else AuditEvent.DEVICE_COMMAND_REJECTED
        ),
        details={"serial": serial},
        update_fields=["sent_at", "acked_at", "ack_detail"],
    )
    transaction.on_commit(
        lambda: realtime.broadcast(
            realtime.STAFF_GROUP,
            {"type": "grid.update", "data": {"command": str(cmd.command_id), "status": target}},
        )
    )
    return cmd


def _ack_quarantine(*, serial: str, doc: dict, signer, device_address: str, cmd) -> None:
    """Keep a refused acknowledgement in the meters quarantine with the check it failed."""
    from apps.grid.commands_mqtt import ack_topic
    from apps.meters.services import device_message_quarantine

    if "signature" not in doc:
        reason, detail = "missing_signature", "no signature"
    elif signer is None:
        reason, detail = "bad_signature", "signature is not 65 hex bytes"
    elif not device_address or signer.lower() != device_address.lower():
        reason, detail = "bad_signature", f"signed by {signer}"
    elif doc.get("serial") != serial:
        reason, detail = "topic_mismatch", f"signed for {doc.get('serial')} on {serial}'s topic"
    else:
        reason, detail = "replayed_seq", f"seq {doc.get('seq')!r} is not command seq {cmd.seq}"
    device_message_quarantine(
        topic=ack_topic(serial), serial=serial, reason=reason, detail=detail,
        payload=json.dumps(doc, sort_keys=True, default=str).encode(),
    )  # fmt: skip


@transaction.atomic
def flexible_device_heard(*, device_id: int) -> None:
    """The device answered (an ack or telemetry): it takes part in dispatch again."""
    rows = flexible_devices_lock([device_id])
    if not rows or (rows[0].missed_commands == 0 and rows[0].unresponsive_since is None):
        return
    device = rows[0]
    if device.unresponsive_since is not None:
        audit_log_write(event=AuditEvent.FLEXIBLE_DEVICE_UNFLAGGED, target=device)
    device.unresponsive_since = None
    device.missed_commands = 0
    device.save(update_fields=["unresponsive_since", "missed_commands"])


@transaction.atomic
def flexible_device_state_record(*, serial: str, state: dict, at: datetime) -> int:
    """Device state from a signed status message (`apps.meters.signals.device_status_recorded`)
    of the device's meter: a battery's `soc_pct` sets its `soc_wh`, an EV charger's `ev_plugged`
    / `ev_charging` are stored — the next dispatch plan starts from them (they are part of its
    inputs' fingerprint) — and the device counts as heard from. Returns the devices updated."""
    ids = list(
        FlexibleDevice.objects.filter(Q(serial=serial) | Q(meter__serial=serial)).values_list(
            "pk", flat=True
        )
    )
    updated = 0
    for device in flexible_devices_lock(ids):
        fields = ["state_reported_at"]
        device.state_reported_at = ensure_utc(at)
        if device.kind == FlexibleDevice.Kind.BATTERY and "soc_pct" in state:
            device.soc_wh = round(device.capacity_wh * state["soc_pct"] / 100)
            fields.append("soc_wh")
        if device.kind == FlexibleDevice.Kind.EV:
            for name in ("ev_plugged", "ev_charging"):
                if name in state:
                    setattr(device, name, state[name])
                    fields.append(name)
        if len(fields) == 1:
            continue  # nothing this device reports
        device.save(update_fields=fields)
        flexible_device_heard(device_id=device.pk)
        updated += 1
    return updated


def _count_misses(misses: dict[int, int], now: datetime) -> int:
    """Count each device's expired commands in a row; flag (and so exclude from dispatch) a
    device that reached `GRID_DEVICE_MISSED_COMMANDS`."""
    limit = conf.get("GRID_DEVICE_MISSED_COMMANDS")
    flagged = 0
    for device in flexible_devices_lock(sorted(misses)):
        device.missed_commands += misses[device.pk]
        fields = ["missed_commands"]
        if device.unresponsive_since is None and device.missed_commands >= limit:
            device.unresponsive_since = now
            fields.append("unresponsive_since")
            audit_log_write(
                event=AuditEvent.FLEXIBLE_DEVICE_FLAGGED,
                target=device,
                details={"serial": device.serial, "missed_commands": device.missed_commands},
            )
            flagged += 1
        device.save(update_fields=fields)
    return flagged


@transaction.atomic
def device_commands_expire(*, now: datetime | None = None) -> int:
    """Expire sent commands left unanswered; a device that missed its last
    `GRID_DEVICE_MISSED_COMMANDS` commands is flagged and left out of the next plans."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=conf.get("GRID_COMMAND_ACK_TIMEOUT_S"))
    ids = DeviceCommand.objects.filter(status=Cmd.SENT, sent_at__lt=limit).values_list(
        "pk", flat=True
    )
    count = 0
    misses: dict[int, int] = {}
    for cmd in device_commands_lock(ids):
        if cmd.status == Cmd.SENT:
            cmd.transition_to(Cmd.EXPIRED, actor=None)
            misses[cmd.device_id] = misses.get(cmd.device_id, 0) + 1
            count += 1
    _count_misses(misses, now)
    return count
