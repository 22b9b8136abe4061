"""OCPP central system (CSMS) over WebSocket: OCPP 1.6-J and 2.0.1 with the `ocpp` package.

A charger connects to ``ws://<host>:<OCPP_PORT>/ocpp/<charge point id>`` offering the
sub-protocol ``ocpp1.6`` or ``ocpp2.0.1`` and HTTP Basic credentials ``<id>:<password>``
(security profile 1). Unknown chargers and wrong passwords are refused with 401 before the
WebSocket opens. Each message is parsed here and handed to a service in
`apps.grid.services.ocpp`; nothing else is decided here.

Handled: BootNotification, Heartbeat, StatusNotification, Authorize (member token),
StartTransaction / StopTransaction (1.6), TransactionEvent (2.0.1), MeterValues. When a session
starts, the dispatch plan is made again with the session in it (a charger without a running
session gets no charging set point) and the charger receives a SetChargingProfile (TxProfile, W)
with the limits of that plan for its device (0 W during a DR event its site opted in to); every
minute
(`push_changed_profiles_forever`) running sessions get a new profile when those limits changed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import logging
from datetime import UTC, datetime
from http import HTTPStatus

from asgiref.sync import sync_to_async
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16 import datatypes as types16
from ocpp.v16 import enums as enums16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import datatypes as types201
from ocpp.v201 import enums as enums201
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from apps.grid import selectors
from apps.grid.services import ocpp as services

logger = logging.getLogger(__name__)
PATH_PREFIX = "/ocpp/"
SUBPROTOCOLS = ["ocpp2.0.1", "ocpp1.6"]
HEARTBEAT_INTERVAL_S = 300


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _time(value: str | None) -> datetime:
    parsed = parse_datetime(value) if value else None
    if parsed is None or parsed.tzinfo is None:
        return timezone.now()
    return parsed.astimezone(UTC)


def charge_point_id_from_path(path: str) -> str | None:
    if not path.startswith(PATH_PREFIX):
        return None
    ident = path[len(PATH_PREFIX) :].split("?", 1)[0].strip("/")
    return ident if ident and "/" not in ident else None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def meter_samples(meter_value: list[dict]) -> list[services.MeterSample]:
    """OCPP meterValue (1.6 and 2.0.1 share the shape, snake_cased by the library) → samples.
    Energy register in Wh (kWh converted), active import power in W, SoC in %."""
    samples = []
    for entry in meter_value or []:
        energy = power = soc = None
        for sv in entry.get("sampled_value", []):
            measurand = sv.get("measurand", "Energy.Active.Import.Register")
            unit = (sv.get("unit_of_measure") or {}).get("unit") or sv.get("unit") or ""
            try:
                value = float(sv.get("value"))
            except (TypeError, ValueError):
                continue
            scale = 1000.0 if unit.lower().startswith("k") else 1.0
            if measurand == "Energy.Active.Import.Register":
                energy = round(value * scale)
            elif measurand == "Power.Active.Import":
                power = round(value * scale)
            elif measurand == "SoC":
                soc = max(0, min(100, round(value)))
        samples.append(
            services.MeterSample(
                timestamp=_time(entry.get("timestamp")),
                energy_wh=energy,
                power_w=power,
                soc_percent=soc,
            )
        )
    return samples


class _Common:
    """What both protocol versions share: the charging profile from the dispatch plan."""

    id: str
    profile_ids = itertools.count(1)
    transactions: dict

    async def charging_limits(self):
        limits = await sync_to_async(selectors.charge_point_charging_limits)(
            ocpp_id=self.id, now=timezone.now()
        )
        self.last_limits = limits
        return limits

    async def replan_and_push(self, connector: int) -> str | None:
        """A session started: re-plan with it, then send the charger its limits."""
        await sync_to_async(services.charging_session_replan)()
        return await self.push_charging_profile(connector)

    async def push_if_changed(self) -> int:
        """Send the profile again to each running session when the plan (or a DR event) changed
        what it says from now on; returns how many were sent."""
        limits = await sync_to_async(selectors.charge_point_charging_limits)(
            ocpp_id=self.id, now=timezone.now()
        )
        previous = getattr(self, "last_limits", None)
        if limits is None or previous is None:
            return 0
        start, step, watts = limits
        p_start, _, p_watts = previous
        offset = int((start - p_start).total_seconds() // step)
        if offset >= 0 and p_watts[offset : offset + len(watts)] == watts:
            return 0
        sent = 0
        for connector in list(self.transactions):
            await self.push_charging_profile(connector)
            sent += 1
        return sent


class CentralSystem16(_Common, ChargePoint16):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.transactions: dict[int, int] = {}  # connector → transaction id

    @on(enums16.Action.boot_notification)
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **kwargs):
        await sync_to_async(services.charge_point_boot)(
            ocpp_id=self.id,
            protocol="ocpp1.6",
            vendor=charge_point_vendor,
            model=charge_point_model,
        )
        return result16.BootNotification(
            current_time=_now_iso(),
            interval=HEARTBEAT_INTERVAL_S,
            status=enums16.RegistrationStatus.accepted,
        )

    @on(enums16.Action.heartbeat)
    async def on_heartbeat(self, **kwargs):
        await sync_to_async(services.charge_point_seen)(ocpp_id=self.id)
        return result16.Heartbeat(current_time=_now_iso())

    @on(enums16.Action.status_notification)
    async def on_status(self, connector_id: int, error_code: str, status: str, **kwargs):
        await sync_to_async(services.charge_point_seen)(ocpp_id=self.id, connector_status=status)
        return result16.StatusNotification()

    @on(enums16.Action.authorize)
    async def on_authorize(self, id_tag: str, **kwargs):
        token = await sync_to_async(selectors.charging_token_active)(token=id_tag)
        status = (
            enums16.AuthorizationStatus.accepted if token else enums16.AuthorizationStatus.invalid
        )
        return result16.Authorize(id_tag_info=types16.IdTagInfo(status=status))

    @on(enums16.Action.start_transaction)
    async def on_start(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kw
    ):
        token = await sync_to_async(selectors.charging_token_active)(token=id_tag)
        if token is None:
            return result16.StartTransaction(
                transaction_id=0,
                id_tag_info=types16.IdTagInfo(status=enums16.AuthorizationStatus.invalid),
            )
        session = await sync_to_async(services.charging_session_start)(
            ocpp_id=self.id,
            transaction_id=None,  # 1.6: the central system assigns it (the session's id)
            token=id_tag,
            connector_id=connector_id,
            meter_start_wh=meter_start,
            started_at=_time(timestamp),
        )
        tx = int(session.transaction_id)
        self.transactions[connector_id] = tx
        return result16.StartTransaction(
            transaction_id=tx,
            id_tag_info=types16.IdTagInfo(status=enums16.AuthorizationStatus.accepted),
        )

    @after(enums16.Action.start_transaction)
    async def after_start(self, connector_id: int, **kwargs):
        if connector_id in self.transactions:
            asyncio.ensure_future(self.replan_and_push(connector_id))

    @on(enums16.Action.stop_transaction)
    async def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs):
        await sync_to_async(services.charging_session_stop)(
            ocpp_id=self.id,
            transaction_id=str(transaction_id),
            meter_stop_wh=meter_stop,
            stopped_at=_time(timestamp),
            reason=kwargs.get("reason") or "",
        )
        self.transactions = {c: t for c, t in self.transactions.items() if t != transaction_id}
        return result16.StopTransaction(
            id_tag_info=types16.IdTagInfo(status=enums16.AuthorizationStatus.accepted)
        )

    @on(enums16.Action.meter_values)
    async def on_meter_values(self, connector_id: int, meter_value: list, **kwargs):
        tx = kwargs.get("transaction_id")
        await sync_to_async(services.charge_point_meter_values_record)(
            ocpp_id=self.id,
            samples=meter_samples(meter_value),
            transaction_id=str(tx) if tx is not None else None,
        )
        return result16.MeterValues()

    async def push_charging_profile(self, connector_id: int = 1) -> str | None:
        """Send the plan's limits as a TxProfile; the charger's answer (Accepted/…) or None."""
        limits = await self.charging_limits()
        tx = self.transactions.get(connector_id)
        if limits is None or tx is None:
            return None
        start, step, watts = limits
        profile = types16.ChargingProfile(
            charging_profile_id=next(self.profile_ids),
            stack_level=0,
            charging_profile_purpose=enums16.ChargingProfilePurposeType.tx_profile,
            charging_profile_kind=enums16.ChargingProfileKindType.absolute,
            transaction_id=tx,
            charging_schedule=types16.ChargingSchedule(
                charging_rate_unit=enums16.ChargingRateUnitType.watts,
                start_schedule=start.isoformat().replace("+00:00", "Z"),
                duration=step * len(watts),
                charging_schedule_period=[
                    types16.ChargingSchedulePeriod(start_period=i * step, limit=float(w))
                    for i, w in enumerate(watts)
                ],
            ),
        )
        response = await self.call(
            call16.SetChargingProfile(connector_id=connector_id, cs_charging_profiles=profile)
        )
        return str(response.status)


class CentralSystem201(_Common, ChargePoint201):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.transactions: dict[int, str] = {}  # EVSE → transaction id

    @on(enums201.Action.boot_notification)
    async def on_boot(self, charging_station: dict, reason: str, **kwargs):
        await sync_to_async(services.charge_point_boot)(
            ocpp_id=self.id,
            protocol="ocpp2.0.1",
            vendor=charging_station.get("vendor_name", ""),
            model=charging_station.get("model", ""),
        )
        return result201.BootNotification(
            current_time=_now_iso(),
            interval=HEARTBEAT_INTERVAL_S,
            status=enums201.RegistrationStatusEnumType.accepted,
        )

    @on(enums201.Action.heartbeat)
    async def on_heartbeat(self, **kwargs):
        await sync_to_async(services.charge_point_seen)(ocpp_id=self.id)
        return result201.Heartbeat(current_time=_now_iso())

    @on(enums201.Action.status_notification)
    async def on_status(self, connector_status: str, evse_id: int, connector_id: int, **kwargs):
        await sync_to_async(services.charge_point_seen)(
            ocpp_id=self.id, connector_status=connector_status
        )
        return result201.StatusNotification()

    @on(enums201.Action.authorize)
    async def on_authorize(self, id_token: dict, **kwargs):
        token = await sync_to_async(selectors.charging_token_active)(token=id_token["id_token"])
        status = (
            enums201.AuthorizationStatusEnumType.accepted
            if token
            else enums201.AuthorizationStatusEnumType.invalid
        )
        return result201.Authorize(id_token_info=types201.IdTokenInfoType(status=status))

    @on(enums201.Action.transaction_event)
    async def on_transaction_event(
        self, event_type: str, timestamp: str, transaction_info: dict, **kwargs
    ):
        tx = transaction_info["transaction_id"]
        evse = (kwargs.get("evse") or {}).get("id", 1)
        id_token = (kwargs.get("id_token") or {}).get("id_token")
        info = None
        if event_type == enums201.TransactionEventEnumType.started:
            token = (
                await sync_to_async(selectors.charging_token_active)(token=id_token)
                if id_token
                else None
            )
            status = (
                enums201.AuthorizationStatusEnumType.accepted
                if token
                else enums201.AuthorizationStatusEnumType.invalid
            )
            info = types201.IdTokenInfoType(status=status)
            if token is not None:
                await sync_to_async(services.charging_session_start)(
                    ocpp_id=self.id,
                    transaction_id=tx,
                    token=id_token,
                    connector_id=evse,
                    started_at=_time(timestamp),
                )
                self.transactions[evse] = tx
        if kwargs.get("meter_value"):
            await sync_to_async(services.charge_point_meter_values_record)(
                ocpp_id=self.id, samples=meter_samples(kwargs["meter_value"]), transaction_id=tx
            )
        if event_type == enums201.TransactionEventEnumType.ended:
            samples = meter_samples(kwargs.get("meter_value") or [])
            energies = [s.energy_wh for s in samples if s.energy_wh is not None]
            await sync_to_async(services.charging_session_stop)(
                ocpp_id=self.id,
                transaction_id=tx,
                meter_stop_wh=energies[-1] if energies else None,
                stopped_at=_time(timestamp),
                reason=transaction_info.get("stopped_reason") or "",
            )
            self.transactions = {e: t for e, t in self.transactions.items() if t != tx}
        return result201.TransactionEvent(id_token_info=info)

    @after(enums201.Action.transaction_event)
    async def after_transaction_event(self, event_type: str, **kwargs):
        evse = (kwargs.get("evse") or {}).get("id", 1)
        if event_type == enums201.TransactionEventEnumType.started and evse in self.transactions:
            asyncio.ensure_future(self.replan_and_push(evse))

    @on(enums201.Action.meter_values)
    async def on_meter_values(self, evse_id: int, meter_value: list, **kwargs):
        await sync_to_async(services.charge_point_meter_values_record)(
            ocpp_id=self.id,
            samples=meter_samples(meter_value),
            transaction_id=self.transactions.get(evse_id),
        )
        return result201.MeterValues()

    async def push_charging_profile(self, evse_id: int = 1) -> str | None:
        limits = await self.charging_limits()
        tx = self.transactions.get(evse_id)
        if limits is None or tx is None:
            return None
        start, step, watts = limits
        profile_id = next(self.profile_ids)
        profile = types201.ChargingProfileType(
            id=profile_id,
            stack_level=0,
            charging_profile_purpose=enums201.ChargingProfilePurposeEnumType.tx_profile,
            charging_profile_kind=enums201.ChargingProfileKindEnumType.absolute,
            transaction_id=tx,
            charging_schedule=[
                types201.ChargingScheduleType(
                    id=profile_id,
                    charging_rate_unit=enums201.ChargingRateUnitEnumType.watts,
                    start_schedule=start.isoformat().replace("+00:00", "Z"),
                    duration=step * len(watts),
                    charging_schedule_period=[
                        types201.ChargingSchedulePeriodType(start_period=i * step, limit=float(w))
                        for i, w in enumerate(watts)
                    ],
                )
            ],
        )
        response = await self.call(
            call201.SetChargingProfile(evse_id=evse_id, charging_profile=profile)
        )
        return str(response.status)


async def _authenticate(connection: ServerConnection, request: Request):
    ident = charge_point_id_from_path(request.path)
    if ident is None:
        return connection.respond(HTTPStatus.NOT_FOUND, "Connect to /ocpp/<charge point id>\n")
    creds = basic_credentials(request.headers.get("Authorization"))
    valid = (
        creds is not None
        and creds[0] == ident
        and await sync_to_async(selectors.charge_point_credentials_valid)(
            ocpp_id=ident, password=creds[1]
        )
    )
    if not valid:
        logger.info("refused charge point %s: unknown or wrong credentials", ident)
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "Unknown charge point or password\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="ocpp"'
        return response
    return None


async def _serve_charge_point(connection: ServerConnection) -> None:
    ident = charge_point_id_from_path(connection.request.path)
    protocol = connection.subprotocol
    if ident is None or protocol not in SUBPROTOCOLS:
        await connection.close(code=1002, reason="offer ocpp1.6 or ocpp2.0.1")
        return
    cls = CentralSystem16 if protocol == "ocpp1.6" else CentralSystem201
    cp = cls(ident, connection)
    CONNECTED[ident] = cp
    try:
        await cp.start()
    except ConnectionClosed:
        pass
    finally:
        CONNECTED.pop(ident, None)
        await sync_to_async(services.charge_point_disconnect)(ocpp_id=ident)


CONNECTED: dict[str, CentralSystem16 | CentralSystem201] = {}


async def push_changed_profiles() -> int:
    """One round: every connected charger with a running session whose limits changed gets a
    new SetChargingProfile."""
    sent = 0
    for cp in list(CONNECTED.values()):
        try:
            sent += await cp.push_if_changed()
        except Exception:  # noqa: BLE001 - one charger's failure must not stop the others
            logger.warning("could not send a new charging profile to %s", cp.id, exc_info=True)
    return sent


async def push_changed_profiles_forever(interval_s: float = 60.0) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await push_changed_profiles()
        except Exception:  # noqa: BLE001 - the database may be restarting
            logger.exception("profile round failed")


def central_system(host: str, port: int):
    """The server (an async context manager): `async with central_system(h, p) as server:`."""
    return serve(
        _serve_charge_point,
        host,
        port,
        subprotocols=SUBPROTOCOLS,
        process_request=_authenticate,
    )
