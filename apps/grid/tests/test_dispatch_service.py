"""Dispatch from stored forecasts and devices; commands over the real MQTT broker with acks."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from apps.grid.command_signing import ACK, CommandVerifier, sign_message
from apps.grid.commands_mqtt import (
    ack_topic,
    command_topic,
    cooperative_command_address,
    listen_acks,
)
from apps.grid.models import DeviceCommand, DispatchPlan, Forecast
from apps.grid.services import (
    device_command_acknowledge,
    device_commands_expire,
    device_commands_publish,
    dispatch_plan_create,
)
from apps.grid.tests.factories import (
    BatteryFactory,
    ConnectionPointFactory,
    EVChargerFactory,
    TransformerFactory,
)
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 19, 0, 0, tzinfo=UTC)


def evening_peak_forecast(transformer, peak_wh: int = 21_000) -> None:
    """Transformer load forecast (Wh per 15 min): 10 kWh base, an evening peak at 18:00 UTC."""
    t = np.arange(96)
    values = 10_000 + peak_wh * np.exp(-(((t - 72) / 6.0) ** 2))
    Forecast.objects.create(
        series_key=f"transformer:{transformer.pk}:load",
        kind="load",
        method="seasonal_mean_4w",
        start=START,
        values_wh=np.rint(values).astype(int).tolist(),
    )


@pytest.fixture
def grid(db):
    trafo = TransformerFactory(capacity_kva=150, power_factor=1.0)  # 150 kW
    evening_peak_forecast(trafo)  # base peaks at 124 kW
    evs = [
        EVChargerFactory(
            connection_point=ConnectionPointFactory(transformer=trafo),
            max_charge_w=11_000,
            daily_energy_wh=22_000,
            available_from_hour=17,
            deadline_hour=24,
        )
        for _ in range(3)
    ]
    bat = BatteryFactory(connection_point=ConnectionPointFactory(transformer=trafo))
    return trafo, evs, bat


def test_plan_keeps_transformer_within_capacity_and_costs_no_more(grid):
    trafo, evs, bat = grid
    plan = dispatch_plan_create(start=START, force=True)
    assert plan.status == DispatchPlan.Status.OPTIMAL
    planned = np.array(plan.transformer_flows_w[trafo.name])
    unmanaged = np.array(plan.unmanaged_flows_w[trafo.name])
    assert unmanaged.max() > 150_000  # EVs plugging in at the peak overload the transformer
    assert planned.max() <= 150_000 + 1
    assert plan.cost <= plan.unmanaged_cost
    assert plan.commands.count() == 4
    for ev in evs:
        cmd = plan.commands.get(device=ev)
        assert sum(cmd.setpoints_w) * 0.25 >= 22_000 - 5  # energy delivered by the deadline
        assert all(x == 0 for x in cmd.setpoints_w[: 17 * 4])  # not before plug-in
    # Same inputs within the hour: no new plan. Changed forecast: re-plan, old one superseded.
    assert dispatch_plan_create(start=START + timedelta(minutes=15)) is None
    Forecast.objects.create(
        series_key=f"transformer:{trafo.pk}:load",
        kind="load",
        method="x",
        start=START,
        values_wh=[9_000] * 96,
    )
    replanned = dispatch_plan_create(start=START + timedelta(minutes=15))
    assert replanned is not None
    plan.refresh_from_db()
    assert plan.status == DispatchPlan.Status.SUPERSEDED
    assert set(plan.commands.values_list("status", flat=True)) == {"superseded"}


def test_infeasible_plan_reports_the_binding_transformer_and_falls_back(grid):
    trafo, _, _ = grid
    trafo.capacity_kva = 60
    trafo.save()
    plan = dispatch_plan_create(start=START, force=True)
    assert plan.status == DispatchPlan.Status.FALLBACK
    assert plan.binding[0]["transformer"] == trafo.name
    assert f"transformer {trafo.name} import exceeds its 60000 W limit" in plan.message


@pytest.mark.mqtt
def test_commands_are_published_and_acknowledged_over_mqtt(grid, settings):
    settings.MQTT_TOPIC_PREFIX = f"{settings.MQTT_TOPIC_PREFIX}/{uuid.uuid4().hex[:8]}"
    _, evs, bat = grid
    plan = dispatch_plan_create(start=START, force=True)
    serials = [d.serial for d in [*evs, bat]]
    keys = {}  # each device signs its acks with its meter's key
    for d in [*evs, bat]:
        d.meter = MeterFactory(member=d.connection_point.member)
        d.save(update_fields=["meter"])
        keys[d.serial] = d.meter.test_key
    verifiers = {s: CommandVerifier(s, cooperative_command_address()) for s in serials}
    refusals: dict[str, str | None] = {}

    # A simulated device fleet: subscribe to their command topics, answer with signed acks.
    received: dict[str, dict] = {}
    ready = threading.Event()
    device = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)

    def on_connect(c, *args):
        for s in serials:
            c.subscribe(command_topic(s), qos=1)
        ready.set()

    def on_message(c, userdata, msg):
        doc = json.loads(msg.payload)
        serial = msg.topic.split("/")[-2]
        received[serial] = doc
        refusals[serial] = verifiers[serial].refusal(doc, START)  # the plan's own day
        accepted = serial != bat.serial  # the battery refuses (e.g. maintenance)
        ack = {
            "command_id": doc["command_id"],
            "serial": serial,
            "seq": doc["seq"],
            "status": "accepted" if accepted else "rejected",
            "reason": "" if accepted else "maintenance",
        }
        c.publish(ack_topic(serial), json.dumps(sign_message(ACK, ack, keys[serial])), qos=1)

    device.on_connect = on_connect
    device.on_message = on_message
    from apps.meters.mqtt_client import broker_from_url

    broker = broker_from_url(settings.IOT_BROKER_URL)
    device.connect(broker.host, broker.port)
    device.loop_start()
    acks: list[tuple[str, dict]] = []
    done = threading.Event()

    def on_ack(serial, doc):
        acks.append((serial, doc))
        if len(acks) == len(serials):
            done.set()

    listener = threading.Thread(target=listen_acks, args=(on_ack,), kwargs={"stop": done.is_set})
    listener.start()
    try:
        assert ready.wait(5)
        import time

        time.sleep(0.5)  # let the ack listener subscribe
        assert device_commands_publish(plan_id=plan.pk) == 4
        assert done.wait(10), f"acks received: {acks}"
    finally:
        done.set()
        listener.join(5)
        device.loop_stop()
        device.disconnect()
    assert set(received) == set(serials)
    assert refusals == dict.fromkeys(serials)  # every device verified its command
    ev_cmd = plan.commands.get(device=evs[0])
    assert received[evs[0].serial]["command_id"] == str(ev_cmd.command_id)
    assert received[evs[0].serial]["setpoints_w"] == ev_cmd.setpoints_w
    for serial, doc in acks:
        device_command_acknowledge(
            serial=serial,
            command_id=doc["command_id"],
            accepted=doc["status"] == "accepted",
            detail=doc,
        )
    statuses = dict(plan.commands.values_list("device__serial", "status"))
    assert statuses[bat.serial] == DeviceCommand.Status.REJECTED
    assert all(statuses[e.serial] == DeviceCommand.Status.ACKNOWLEDGED for e in evs)
    # An ack from the wrong device for someone else's command changes nothing.
    assert (
        device_command_acknowledge(
            serial="intruder", command_id=str(ev_cmd.command_id), accepted=False
        )
        is None
    )


def test_commands_without_ack_expire(grid):
    plan = dispatch_plan_create(start=START, force=True)
    cmd = plan.commands.first()
    cmd.sent_at = datetime.now(UTC) - timedelta(hours=1)
    cmd.transition_to(DeviceCommand.Status.SENT, actor=None, update_fields=["sent_at"])
    assert device_commands_expire() == 1
    cmd.refresh_from_db()
    assert cmd.status == DeviceCommand.Status.EXPIRED
