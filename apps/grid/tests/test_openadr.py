"""OpenADR 2.0b VTN against openleadr's own VEN client: registration of a provisioned VEN only,
a published DR event delivered, the VEN's optIn recorded as its site's answer, telemetry reports
stored and a battery's state of charge taken over for dispatch."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone
from openleadr import OpenADRClient

from apps.core.intervals import floor_interval
from apps.grid.models import DRParticipation, FlexibleDevice, OpenADRReport, OpenADRVen
from apps.grid.openadr_vtn import Vtn
from apps.grid.services import dr_event_cancel, dr_event_create, dr_event_publish
from apps.grid.services.openadr import openadr_ven_provision
from apps.grid.tests.factories import BatteryFactory, ConnectionPointFactory
from tests.fixtures.ports import free_port


async def _until(predicate, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await predicate():
            return True
        await asyncio.sleep(0.2)
    return False


async def _run(port: int, battery_serial: str) -> dict:
    from asgiref.sync import sync_to_async

    # The VTN would look for due events on its own only after 5 minutes: the event reaches the
    # VEN because it registers, its cancellation because staff cancel it.
    vtn = Vtn("127.0.0.1", port, poll_seconds=0.5, recheck_seconds=300)
    await vtn.start()
    seen: dict = {"events": [], "stranger_registered": None}
    stranger = OpenADRClient(ven_name="not-provisioned", vtn_url=vtn.url, show_fingerprint=False)
    ven = OpenADRClient(ven_name="ven-site-1", vtn_url=vtn.url, show_fingerprint=False)

    async def on_event(event):
        seen["events"].append(event)
        return "optIn"

    async def on_update_event(event):
        seen.setdefault("updates", []).append(event)
        return "optIn"

    ven.add_handler("on_event", on_event)
    ven.add_handler("on_update_event", on_update_event)
    ven.add_report(
        callback=lambda: 3_700.0,
        resource_id=battery_serial,
        measurement="power_real",
        unit="W",
        sampling_rate=timedelta(seconds=1),
        report_duration=timedelta(hours=1),
    )
    ven.add_report(
        callback=lambda: 80.0,
        resource_id=battery_serial,
        measurement="stateOfCharge",
        unit="%",
        sampling_rate=timedelta(seconds=1),
        report_duration=timedelta(hours=1),
    )
    try:
        await stranger.create_party_registration()
        seen["stranger_registered"] = stranger.registration_id
        await ven.run()

        def state():
            part = DRParticipation.objects.get()
            soc = OpenADRReport.objects.filter(measurement__iexact="stateOfCharge").count()
            return part.opt == DRParticipation.Opt.OPT_IN and soc > 0

        assert await _until(sync_to_async(state), 30), "no optIn and SoC report in 30 s"
        seen["ven_id"] = ven.ven_id
        # Staff cancel the event: the VEN hears of it at its next poll.
        event_pk = await sync_to_async(lambda: DRParticipation.objects.get().event_id)()
        await sync_to_async(dr_event_cancel)(event_pk=event_pk, reason="feeder repaired")

        async def cancelled() -> bool:
            return any(
                u["event_descriptor"]["event_status"] == "cancelled"
                for u in seen.get("updates", [])
            )

        assert await _until(cancelled, 15), "the VEN did not hear of the cancellation in 15 s"
    finally:
        await ven.stop()
        await vtn.stop()
    return seen


@pytest.mark.django_db(transaction=True)
def test_openleadr_ven_registers_receives_the_event_opts_in_and_reports():
    site = ConnectionPointFactory()
    battery = BatteryFactory(connection_point=site, capacity_wh=10_000, soc_wh=1_000)
    provisioned = openadr_ven_provision(ven_name="ven-site-1", connection_point=site)
    start = floor_interval(timezone.now()) + timedelta(hours=2)
    event = dr_event_create(
        start=start,
        end=start + timedelta(hours=1),
        connection_point_ids=[site.pk],
        signal_values=[2, 3, 3, 1],
    )
    dr_event_publish(event_pk=event.pk)

    seen = async_to_sync(_run)(free_port(), battery.serial)

    assert seen["stranger_registered"] is None  # not provisioned: refused
    assert seen["ven_id"] == provisioned.ven_id
    assert OpenADRVen.objects.get(pk=provisioned.pk).registration_id
    delivered = seen["events"][0]
    assert delivered["event_descriptor"]["event_id"] == event.event_id
    signal = delivered["event_signals"][0]
    assert signal["signal_name"] == "SIMPLE"
    assert [i["signal_payload"] for i in signal["intervals"]] == [2, 3, 3, 1]
    assert DRParticipation.objects.get(event=event).opt == DRParticipation.Opt.OPT_IN
    power = OpenADRReport.objects.filter(ven=provisioned, resource_id=battery.serial)
    assert power.exclude(measurement__iexact="stateOfCharge").first().value == 3_700.0
    assert FlexibleDevice.objects.get(pk=battery.pk).soc_wh == 8_000  # 80 % of 10 kWh


async def _events_after_publish(port: int, event_pk: int) -> tuple[list, float]:
    """A registered VEN, a VTN that would only look again after 5 minutes on its own, then staff
    publish the event: the (events the VEN received, seconds it took)."""
    from asgiref.sync import sync_to_async

    vtn = Vtn("127.0.0.1", port, poll_seconds=0.5, recheck_seconds=300)
    await vtn.start()
    ven = OpenADRClient(ven_name="ven-site-1", vtn_url=vtn.url, show_fingerprint=False)
    events: list = []

    async def on_event(event):
        events.append(event)
        return "optIn"

    ven.add_handler("on_event", on_event)
    try:
        await ven.run()
        await asyncio.sleep(1)  # registered; the VTN has had its look and found nothing
        assert events == []
        loop = asyncio.get_running_loop()
        published_at = loop.time()
        await sync_to_async(dr_event_publish)(event_pk=event_pk)

        async def received() -> bool:
            return bool(events)

        await _until(received, 15)
        return events, loop.time() - published_at
    finally:
        await ven.stop()
        await vtn.stop()


@pytest.mark.django_db(transaction=True)
def test_a_published_event_reaches_the_ven_at_its_next_poll_without_the_vtn_polling_the_db():
    site = ConnectionPointFactory()
    openadr_ven_provision(ven_name="ven-site-1", connection_point=site)
    start = floor_interval(timezone.now()) + timedelta(hours=2)
    event = dr_event_create(
        start=start, end=start + timedelta(hours=1), connection_point_ids=[site.pk]
    )

    events, seconds = async_to_sync(_events_after_publish)(free_port(), event.pk)

    assert [e["event_descriptor"]["event_id"] for e in events] == [event.event_id]
    assert seconds < 10


async def _polls_for(port: int, seconds: float) -> None:
    vtn = Vtn("127.0.0.1", port, poll_seconds=0.5)
    await vtn.start()
    ven = OpenADRClient(ven_name="ven-site-1", vtn_url=vtn.url, show_fingerprint=False)
    try:
        await ven.run()
        await asyncio.sleep(seconds)
    finally:
        await ven.stop()
        await vtn.stop()


@pytest.mark.django_db(transaction=True)
def test_a_polling_ven_is_not_looked_up_in_the_database_at_every_poll(monkeypatch):
    from apps.grid import selectors

    site = ConnectionPointFactory()
    openadr_ven_provision(ven_name="ven-site-1", connection_point=site)
    lookup = selectors.openadr_ven_lookup
    looked_up: list[str] = []

    def counting_lookup(*, ven_id):
        looked_up.append(ven_id)
        return lookup(ven_id=ven_id)

    monkeypatch.setattr(selectors, "openadr_ven_lookup", counting_lookup)
    async_to_sync(_polls_for)(free_port(), 4)  # about eight oadrPolls at 0.5 s

    assert 1 <= len(looked_up) <= 2
