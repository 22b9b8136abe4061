"""OCPP central system against the `ocpp` library's own ChargePoint clients (1.6-J, 2.0.1):
credentials, Authorize, a session with MeterValues, and the dispatch plan's SetChargingProfile."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Client16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16 import enums as enums16
from ocpp.v201 import ChargePoint as Client201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import enums as enums201
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from apps.grid.models import (
    ChargePoint,
    ChargePointMeterValue,
    ChargingSession,
    DispatchPlan,
    DREvent,
)
from apps.grid.ocpp_central import central_system, meter_samples, push_changed_profiles
from apps.grid.services import (
    dispatch_plan_create,
    dr_event_cancel,
    dr_event_create,
    dr_event_publish,
    dr_opt_set,
)
from apps.grid.services.ocpp import charge_point_register, charging_token_issue
from apps.grid.tests.factories import EVChargerFactory, TransformerFactory
from tests.fixtures.ports import free_port

PASSWORD = "correct-horse-battery-staple"


def basic(user: str, password: str) -> dict:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


class Charger16(Client16):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.profiles: asyncio.Queue = asyncio.Queue()

    @on(enums16.Action.set_charging_profile)
    async def on_profile(self, connector_id, cs_charging_profiles, **kwargs):
        await self.profiles.put(cs_charging_profiles)
        return result16.SetChargingProfile(status=enums16.ChargingProfileStatus.accepted)


class Charger201(Client201):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.profiles: asyncio.Queue = asyncio.Queue()

    @on(enums201.Action.set_charging_profile)
    async def on_profile(self, evse_id, charging_profile, **kwargs):
        await self.profiles.put(charging_profile)
        return result201.SetChargingProfile(status=enums201.ChargingProfileStatusEnumType.accepted)


HEADROOM_W = 6_000  # the chargers' transformer: 6 kVA at power factor 1, no other load


def _setup():
    """Two chargers on one small transformer and a plan made before any session: a charger with
    no running session gets no charging set point."""
    transformer = TransformerFactory(capacity_kva=HEADROOM_W // 1000, power_factor=1.0)
    devices = {}
    for ident in ("CP-16", "CP-201"):
        device = EVChargerFactory(connection_point__transformer=transformer)
        charge_point_register(ocpp_id=ident, password=PASSWORD, device=device)
        devices[ident] = device
    plan = dispatch_plan_create(force=True)
    assert not plan.commands.filter(device__in=devices.values()).exists()
    member = devices["CP-16"].connection_point.member
    charging_token_issue(member=member, token="RFID-0001")
    return member, devices


def _session_plan_check(ident: str, limits: list[int]) -> None:
    """The profile comes from a plan made after the session started, for what the EV needs,
    within the transformer's headroom."""
    device = ChargePoint.objects.get(ocpp_id=ident).device
    plan = DispatchPlan.objects.exclude(status=DispatchPlan.Status.SUPERSEDED).get()
    command = plan.commands.get(device=device)
    assert limits == command.setpoints_w[-len(limits) :]
    assert max(limits) <= HEADROOM_W < device.max_charge_w
    assert sum(limits) / 4 >= device.daily_energy_wh  # 15-minute periods, W → Wh


def _opt_in_to_event(ident: str, start: datetime) -> datetime:
    device = ChargePoint.objects.get(ocpp_id=ident).device
    site = device.connection_point
    event = dr_event_create(
        start=start, end=start + timedelta(hours=1), connection_point_ids=[site.pk]
    )
    dr_event_publish(event_pk=event.pk)
    dr_opt_set(member=site.member, event_pk=event.pk, opt="optIn")
    return start


def _cancel_events() -> None:
    for event in DREvent.objects.exclude(status=DREvent.Status.CANCELLED):
        dr_event_cancel(event_pk=event.pk, reason="overload forecast withdrawn")


async def _refused(url: str, ident: str, headers: dict) -> int:
    with pytest.raises(InvalidStatus) as exc:
        async with connect(f"{url}/{ident}", subprotocols=["ocpp1.6"], additional_headers=headers):
            pass
    return exc.value.response.status_code


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def _scenario_16(url: str) -> str:
    async with connect(
        f"{url}/CP-16", subprotocols=["ocpp1.6"], additional_headers=basic("CP-16", PASSWORD)
    ) as ws:
        client = Charger16("CP-16", ws)
        runner = asyncio.create_task(client.start())
        boot = await client.call(
            call16.BootNotification(charge_point_model="Wallbox", charge_point_vendor="ACME")
        )
        assert boot.status == enums16.RegistrationStatus.accepted
        await client.call(call16.Heartbeat())
        await client.call(
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing")
        )
        bad = await client.call(call16.Authorize(id_tag="NOT-A-MEMBER"))
        assert bad.id_tag_info["status"] == enums16.AuthorizationStatus.invalid
        good = await client.call(call16.Authorize(id_tag="RFID-0001"))
        assert good.id_tag_info["status"] == enums16.AuthorizationStatus.accepted
        started = await client.call(
            call16.StartTransaction(
                connector_id=1, id_tag="RFID-0001", meter_start=1_000, timestamp=now_iso()
            )
        )
        assert started.id_tag_info["status"] == enums16.AuthorizationStatus.accepted
        profile = await asyncio.wait_for(client.profiles.get(), 10)
        assert profile["transaction_id"] == started.transaction_id
        schedule = profile["charging_schedule"]
        assert schedule["charging_rate_unit"] == "W"
        limits = [p["limit"] for p in schedule["charging_schedule_period"]]
        await sync_to_async(_session_plan_check)("CP-16", limits)
        # Nothing changed: no new profile. Then the site opts in to a one-hour DR event from
        # when the plan starts charging: the charger gets a new profile that pauses it then.
        assert await push_changed_profiles() == 0
        first = next(p["start_period"] for p in schedule["charging_schedule_period"] if p["limit"])
        charging_from = datetime.fromisoformat(schedule["start_schedule"]) + timedelta(
            seconds=first
        )
        event_start = await sync_to_async(_opt_in_to_event)("CP-16", charging_from)
        assert await push_changed_profiles() == 1
        paused = await asyncio.wait_for(client.profiles.get(), 10)
        periods = paused["charging_schedule"]["charging_schedule_period"]
        start = datetime.fromisoformat(paused["charging_schedule"]["start_schedule"])
        by_time = {start + timedelta(seconds=p["start_period"]): p["limit"] for p in periods}
        assert [by_time[event_start + i * timedelta(minutes=15)] for i in range(4)] == [0] * 4
        assert by_time[event_start + timedelta(hours=1)] > 0
        # Staff cancel the event: the next round sends the plan's limits again, unpaused.
        await sync_to_async(_cancel_events)()
        assert await push_changed_profiles() == 1
        resumed = await asyncio.wait_for(client.profiles.get(), 10)
        periods = resumed["charging_schedule"]["charging_schedule_period"]
        assert [p["limit"] for p in periods] == limits[-len(periods) :]
        await client.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=started.transaction_id,
                meter_value=[
                    {
                        "timestamp": "2026-06-01T10:00:00Z",
                        "sampledValue": [
                            {
                                "value": "2.5",
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "kWh",
                            },
                            {"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
                        ],
                    }
                ],
            )
        )
        await client.call(
            call16.StopTransaction(
                meter_stop=4_000, timestamp=now_iso(), transaction_id=started.transaction_id
            )
        )
        runner.cancel()
    return started.transaction_id


async def _scenario_201(url: str) -> None:
    async with connect(
        f"{url}/CP-201", subprotocols=["ocpp2.0.1"], additional_headers=basic("CP-201", PASSWORD)
    ) as ws:
        client = Charger201("CP-201", ws)
        runner = asyncio.create_task(client.start())
        boot = await client.call(
            call201.BootNotification(
                charging_station={"model": "Wallbox 2", "vendor_name": "ACME"},
                reason="PowerUp",
            )
        )
        assert boot.status == enums201.RegistrationStatusEnumType.accepted
        await client.call(call201.Heartbeat())
        await client.call(
            call201.StatusNotification(
                timestamp=now_iso(), connector_status="Occupied", evse_id=1, connector_id=1
            )
        )
        auth = await client.call(
            call201.Authorize(id_token={"id_token": "RFID-0001", "type": "ISO14443"})
        )
        assert auth.id_token_info["status"] == enums201.AuthorizationStatusEnumType.accepted
        started = await client.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp=now_iso(),
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info={"transaction_id": "tx-201-1"},
                evse={"id": 1, "connector_id": 1},
                id_token={"id_token": "RFID-0001", "type": "ISO14443"},
            )
        )
        assert started.id_token_info["status"] == enums201.AuthorizationStatusEnumType.accepted
        profile = await asyncio.wait_for(client.profiles.get(), 10)
        assert profile["transaction_id"] == "tx-201-1"
        periods = profile["charging_schedule"][0]["charging_schedule_period"]
        await sync_to_async(_session_plan_check)("CP-201", [p["limit"] for p in periods])
        for seq, (stamp, kwh, event) in enumerate(
            [("2026-06-01T10:15:00Z", "1.2", "Updated"), ("2026-06-01T10:30:00Z", "3.0", "Ended")],
            start=1,
        ):
            await client.call(
                call201.TransactionEvent(
                    event_type=event,
                    timestamp=now_iso(),
                    trigger_reason="MeterValuePeriodic" if event == "Updated" else "EVDeparted",
                    seq_no=seq,
                    transaction_info={"transaction_id": "tx-201-1"},
                    meter_value=[
                        {
                            "timestamp": stamp,
                            "sampled_value": [
                                {
                                    "value": float(kwh),
                                    "measurand": "Energy.Active.Import.Register",
                                    "unit_of_measure": {"unit": "kWh"},
                                },
                                {"value": 42, "measurand": "SoC"},
                            ],
                        }
                    ],
                )
            )
        runner.cancel()


async def _all(port: int) -> str:
    url = f"ws://127.0.0.1:{port}/ocpp"
    async with central_system("127.0.0.1", port):
        assert await _refused(url, "CP-16", basic("CP-16", "wrong-password-123")) == 401
        assert await _refused(url, "CP-UNKNOWN", basic("CP-UNKNOWN", PASSWORD)) == 401
        assert await _refused(url, "CP-16", {}) == 401
        assert await _refused(url, "CP-16", basic("CP-201", PASSWORD)) == 401
        tx16 = await _scenario_16(url)
        await _scenario_201(url)
        await asyncio.sleep(0.2)  # the server notices the closed connections
    return str(tx16)


@pytest.mark.django_db(transaction=True)
def test_ocpp_16_and_201_chargers_boot_authorise_charge_and_receive_the_plan():
    member, devices = _setup()
    port = free_port()
    tx16 = async_to_sync(_all)(port)

    cp16 = ChargePoint.objects.get(ocpp_id="CP-16")
    cp201 = ChargePoint.objects.get(ocpp_id="CP-201")
    assert (cp16.protocol, cp201.protocol) == ("ocpp1.6", "ocpp2.0.1")
    assert (cp16.vendor, cp201.model) == ("ACME", "Wallbox 2")
    assert cp16.connector_status == "Preparing" and cp201.connector_status == "Occupied"
    assert cp16.status == cp201.status == ChargePoint.Status.OFFLINE  # disconnected at the end
    assert "correct-horse" not in cp16.password_hash

    s16 = ChargingSession.objects.get(charge_point=cp16)
    assert s16.transaction_id == tx16 and s16.member == member
    assert (s16.meter_start_wh, s16.meter_stop_wh) == (1_000, 4_000) and s16.stopped_at
    s201 = ChargingSession.objects.get(charge_point=cp201, transaction_id="tx-201-1")
    assert s201.member == member and s201.meter_stop_wh == 3_000 and s201.stopped_at

    v16 = ChargePointMeterValue.objects.get(charge_point=cp16)
    assert (v16.energy_wh, v16.power_w, v16.session, v16.source) == (2_500, 7_400, s16, "ocpp")
    values = list(ChargePointMeterValue.objects.filter(charge_point=cp201).order_by("timestamp"))
    assert [(v.energy_wh, v.soc_percent, v.source) for v in values] == [
        (1_200, 42, "ocpp"),
        (3_000, 42, "ocpp"),
    ]
    assert values[0].timestamp == datetime(2026, 6, 1, 10, 15, tzinfo=UTC)
    # Both sessions ended: the next plan (its inputs changed) charges neither charger.
    after = dispatch_plan_create()
    assert after is not None and not after.commands.filter(device__in=devices.values()).exists()


def test_meter_samples_convert_units_and_skip_garbage():
    samples = meter_samples(
        [
            {
                "timestamp": "2026-06-01T10:00:00+02:00",
                "sampled_value": [
                    {"value": "12.345", "unit": "kWh"},
                    {"value": "n/a", "measurand": "Power.Active.Import"},
                    {"value": "11", "measurand": "Power.Active.Import", "unit": "kW"},
                ],
            }
        ]
    )
    assert samples[0].energy_wh == 12_345 and samples[0].power_w == 11_000
    assert samples[0].timestamp == datetime(2026, 6, 1, 8, tzinfo=UTC)


@pytest.mark.django_db
def test_charge_point_presence_is_a_state_machine_and_registration_is_audited():
    from apps.audit.events import AuditEvent
    from apps.audit.models import AuditLog
    from apps.core.exceptions import InvalidTransition
    from apps.grid.services.ocpp import (
        charge_point_boot,
        charge_point_disconnect,
        charge_point_seen,
    )

    cp = charge_point_register(ocpp_id="CP-STATE", password=PASSWORD)
    charge_point_register(ocpp_id="CP-STATE", password=PASSWORD + "x")  # a new password
    events = list(
        AuditLog.objects.filter(target_id=str(cp.pk)).order_by("pk").values_list("event", flat=True)
    )
    assert events == [AuditEvent.CHARGE_POINT_REGISTERED, AuditEvent.CHARGE_POINT_PASSWORD_SET]
    assert cp.status == ChargePoint.Status.NEW
    with pytest.raises(InvalidTransition):
        cp.transition_to(ChargePoint.Status.OFFLINE, actor=None)  # never connected
    assert charge_point_boot(ocpp_id="CP-STATE", protocol="ocpp1.6").status == "online"
    assert charge_point_seen(ocpp_id="CP-STATE").status == "online"  # stays online
    charge_point_disconnect(ocpp_id="CP-STATE")
    cp.refresh_from_db()
    assert cp.status == ChargePoint.Status.OFFLINE
    assert charge_point_seen(ocpp_id="CP-STATE", connector_status="Available").status == "online"
    assert AuditLog.objects.filter(event=AuditEvent.CHARGE_POINT_BOOTED).count() == 1
