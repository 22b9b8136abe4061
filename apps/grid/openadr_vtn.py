"""OpenADR 2.0b VTN with openleadr's `OpenADRServer` (HTTP pull; `manage.py openadr_vtn`).

VENs are pre-provisioned (`OpenADRVen`): a VEN registers under its name and gets its provisioned
venID; unknown names are refused. Published DR events of the VEN's site are queued for it (SIMPLE
levels, LOAD_DISPATCH set points, with the event's own intervals) as soon as they are due, and
again when an event is modified; the VEN's optIn/optOut is its site's answer. A cancelled event
that was queued for a VEN is cancelled there (openleadr's `cancel_event`: status cancelled, next
modification number), once. The VTN looks for due events and cancellations when the DR services
announce a change (PostgreSQL NOTIFY on `DR_EVENTS_CHANNEL`, see `apps.core.pg_notify`), when a
VEN registers, and otherwise every `recheck_seconds` (a safety net, not the delivery path).
Telemetry reports (real power, state of charge) are stored; a battery's state of charge feeds the
next dispatch plan. Each request is parsed by openleadr and handed to a service in
`apps.grid.services.openadr`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from openleadr import OpenADRServer

from apps.core import pg_notify
from apps.grid import selectors
from apps.grid.services import openadr as services
from apps.grid.services.dr import DR_EVENTS_CHANNEL

logger = logging.getLogger(__name__)
# openleadr.client sets its logger to INFO when imported, which overrides LOG_LEVEL (settings):
# the VTN and every VEN would log each oadrPoll (a line a second or more with the demo's VENs).
# It follows the root logger's level like every other library.
logging.getLogger("openleadr").setLevel(logging.NOTSET)
PATH_PREFIX = "/OpenADR2/Simple/2.0b"
# openleadr looks the VEN up for every message (each oadrPoll: the demo's VENs send several a
# second): a known VEN is looked up in the database at most once a minute (and again when it
# registers), so a change to a provisioned VEN (admin) reaches the VTN within that minute.
VEN_LOOKUP_TTL_S = 60.0
VTN_ID = "energysphere-vtn"


def event_intervals(event) -> list[dict]:
    """DREvent intervals ([{"start", "duration_s", "value"}]) → openleadr intervals."""
    out = []
    for item in event.intervals:
        start = item["start"]
        start = parse_datetime(start) if isinstance(start, str) else start
        out.append(
            {
                "dtstart": start,
                "duration": timedelta(seconds=int(item["duration_s"])),
                "signal_payload": float(item["value"]),
            }
        )
    return out


class Vtn:
    """The openleadr server plus the loop that queues due events for registered VENs."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        poll_seconds: float = 10.0,
        recheck_seconds: float | None = None,
    ):
        """`poll_seconds`: the oadrPoll interval the VENs are asked for; `recheck_seconds`
        (default: the same): the longest the VTN goes without looking for due events."""
        self.server = OpenADRServer(
            vtn_id=VTN_ID,
            http_host=host,
            http_port=port,
            http_path_prefix=PATH_PREFIX,
            ven_lookup=self.ven_lookup,
            requested_poll_freq=timedelta(seconds=poll_seconds),
            show_fingerprint=False,
        )
        self.poll_seconds = poll_seconds
        self.recheck_seconds = poll_seconds if recheck_seconds is None else recheck_seconds
        self._wake = asyncio.Event()
        self._listener: asyncio.Task | None = None
        self._vens: dict[str, tuple[float, dict]] = {}  # venID → (looked up at, ven_lookup's dict)
        self.server.add_handler("on_create_party_registration", self.on_create_party_registration)
        self.server.add_handler("on_register_report", self.on_register_report)
        self._task: asyncio.Task | None = None
        self.url = f"http://{host}:{port}{PATH_PREFIX}"

    async def ven_lookup(self, ven_id: str) -> dict | None:
        now = time.monotonic()
        cached = self._vens.get(ven_id)
        if cached is not None and now - cached[0] < VEN_LOOKUP_TTL_S:
            return cached[1]
        info = await sync_to_async(selectors.openadr_ven_lookup)(ven_id=ven_id)
        if info is None:
            self._vens.pop(ven_id, None)  # unknown VENs are asked again every time
        else:
            self._vens[ven_id] = (now, info)
        return info

    async def on_create_party_registration(self, registration_info: dict):
        ven = await sync_to_async(services.openadr_ven_register)(
            ven_name=registration_info.get("ven_name", ""),
            fingerprint=registration_info.get("fingerprint"),
        )
        if ven is None:
            logger.info("refused VEN %r: not provisioned", registration_info.get("ven_name"))
            return False
        self._vens.pop(ven.ven_id, None)  # its registration id may be new
        self._wake.set()  # events may be waiting for this VEN
        return ven.ven_id, ven.registration_id

    async def on_register_report(
        self,
        ven_id: str,
        resource_id: str,
        measurement: str,
        unit,
        scale,
        min_sampling_interval: timedelta,
        max_sampling_interval: timedelta,
    ):
        async def store(values: list[tuple[datetime, float]]) -> None:
            await sync_to_async(services.openadr_report_record)(
                ven_id=ven_id, resource_id=resource_id, measurement=measurement, values=values
            )

        return store, max(min_sampling_interval, timedelta(seconds=1))

    def _opt_callback(self, event_pk: int):
        async def on_opt(ven_id: str, event_id: str, opt_type: str) -> None:
            try:
                await sync_to_async(services.openadr_event_opt)(
                    ven_id=ven_id, event_id=event_id, opt=opt_type
                )
            except Exception:  # noqa: BLE001 - a late answer must not stop the VTN
                logger.warning("opt %s of %s for %s not recorded", opt_type, ven_id, event_id)

        return on_opt

    async def queue_due_events(self) -> int:
        due = await sync_to_async(selectors.openadr_events_due)(now=timezone.now())
        for ven_id, event in due:
            self.server.add_event(
                ven_id=ven_id,
                signal_name=event.signal_name,
                signal_type=event.signal_type,
                intervals=event_intervals(event),
                callback=self._opt_callback(event.pk),
                event_id=event.event_id,
                market_context=f"oadr://{event.market_context.replace(':', '/')}",
            )
            await sync_to_async(services.openadr_event_queued)(
                ven_id=ven_id, event_pk=event.pk, modification_number=event.modification_number
            )
        cancelled = await sync_to_async(selectors.openadr_cancellations_due)(now=timezone.now())
        for ven_id, event in cancelled:
            self.server.cancel_event(ven_id, event.event_id)
            await sync_to_async(services.openadr_event_queued)(
                ven_id=ven_id, event_pk=event.pk, modification_number=event.modification_number
            )
        return len(due) + len(cancelled)

    async def _queue_forever(self) -> None:
        while True:
            self._wake.clear()  # a change announced during the round wakes the next one
            try:
                await self.queue_due_events()
            except Exception:  # noqa: BLE001 - the database may be restarting: try again
                logger.exception("could not queue DR events")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.recheck_seconds)

    async def start(self) -> None:
        await self.server.run()
        self._listener = asyncio.create_task(pg_notify.listen(DR_EVENTS_CHANNEL, self._wake.set))
        self._task = asyncio.create_task(self._queue_forever())

    async def stop(self) -> None:
        for task in (self._task, self._listener):
            if task is not None:
                task.cancel()
        await self.server.stop()
