"""The demo VEN simulator (openleadr clients) against the VTN: it registers, answers the site's
DR event and reports power and state of charge, which dispatch then starts from."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.utils import timezone

from apps.core.intervals import floor_interval
from apps.demo.keys import demo_ven_name
from apps.demo.management.commands.openadr_ven_simulator import SimulatedSite
from apps.grid.models import DRParticipation, FlexibleDevice, OpenADRReport
from apps.grid.openadr_vtn import Vtn
from apps.grid.services import dr_event_create, dr_event_publish
from apps.grid.services.openadr import openadr_ven_provision
from apps.grid.tests.factories import BatteryFactory, ConnectionPointFactory
from tests.fixtures.ports import free_port


async def _run(port: int, site: SimulatedSite) -> None:
    vtn = Vtn("127.0.0.1", port, poll_seconds=0.5)
    await vtn.start()
    client = site.client(vtn.url, timedelta(seconds=1))

    def answered() -> bool:
        part = DRParticipation.objects.get()
        reports = OpenADRReport.objects.filter(measurement="stateOfCharge").exists()
        return part.opt != DRParticipation.Opt.PENDING and reports

    try:
        await client.run()
        for _ in range(150):
            if await sync_to_async(answered)():
                break
            await asyncio.sleep(0.2)
    finally:
        await client.stop()
        await vtn.stop()


@pytest.mark.django_db(transaction=True)
def test_simulated_ven_answers_the_event_and_reports_state_of_charge():
    cp = ConnectionPointFactory()
    battery = BatteryFactory(connection_point=cp, capacity_wh=10_000, soc_wh=0)
    openadr_ven_provision(ven_name=demo_ven_name(cp.code), connection_point=cp)
    start = floor_interval(timezone.now()) + timedelta(hours=1)
    event = dr_event_create(
        start=start, end=start + timedelta(hours=1), connection_point_ids=[cp.pk]
    )
    dr_event_publish(event_pk=event.pk)
    site = SimulatedSite(
        {
            "ven_name": demo_ven_name(cp.code),
            "devices": [{"serial": battery.serial, "kind": "battery", "max_w": 5_000}],
        }
    )
    async_to_sync(_run)(free_port(), site)

    assert DRParticipation.objects.get(event=event).opt == site.opt
    soc = OpenADRReport.objects.filter(resource_id=battery.serial, measurement="stateOfCharge")
    assert soc.exists()
    latest = soc.order_by("-timestamp").first().value
    assert FlexibleDevice.objects.get(pk=battery.pk).soc_wh == round(10_000 * latest / 100)
    assert OpenADRReport.objects.filter(
        resource_id=battery.serial, measurement="RealPower"
    ).exists()
