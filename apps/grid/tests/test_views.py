"""Staff grid dashboard and admin topology tree: staff only, showing what is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from apps.grid.models import Forecast, StabilityAssessment
from apps.grid.services import dispatch_plan_create
from apps.grid.tests.factories import ConnectionPointFactory, EVChargerFactory
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db


def test_grid_dashboard_is_staff_only_and_shows_topology_loading_and_plan(
    client, member, staff_user
):
    cp = ConnectionPointFactory()
    trafo = cp.transformer
    EVChargerFactory(connection_point=cp)
    start = datetime(2026, 3, 19, tzinfo=UTC)
    Forecast.objects.create(
        series_key="community:load",
        kind="load",
        method="mstl_ets",
        start=start,
        values_wh=[1000] * 96,
    )
    Forecast.objects.create(
        series_key=f"transformer:{trafo.pk}:load",
        kind="load",
        method="mstl_ets",
        start=start,
        values_wh=[1000] * 96,
    )
    StabilityAssessment.objects.create(
        interval_start=start,
        source="measured",
        score=97,
        max_loading_percent=42.5,
        min_vm_pu=0.98,
        max_vm_pu=1.0,
        transformers={trafo.name: {"loading_percent": 42.5}},
        bus_voltages={"Bus far": 0.981, "Bus near": 0.995},
    )
    dispatch_plan_create(start=start, force=True)

    client.force_login(member.user)
    assert client.get(reverse("grid:dashboard")).status_code == 403
    assert client.get(reverse("grid:dashboard_data")).status_code == 403

    client.force_login(staff_user)  # without MFA in this session: refused by the policy
    assert client.get(reverse("grid:dashboard")).status_code == 403
    login_with_mfa(client, staff_user)
    page = client.get(reverse("grid:dashboard"))
    assert page.status_code == 200
    html = page.content.decode()
    assert trafo.name in html and trafo.feeder.name in html
    assert "42 % loaded" in html or "43 % loaded" in html
    assert "Optimal" in html
    assert "Bus far 0.981 pu" in html
    data = client.get(reverse("grid:dashboard_data")).json()
    assert data["forecast_vs_actual"]["forecast_wh"] == [1000] * 96
    assert data["forecast_vs_actual"]["method"] == "mstl_ets"
    assert trafo.name in data["dispatch"]["planned_w"]
    assert data["dispatch"]["capacity_w"][trafo.name] == trafo.capacity_w


def test_admin_topology_tree_lists_every_level(client, staff_user):
    cp = ConnectionPointFactory()
    login_with_mfa(client, staff_user)
    staff_user.is_superuser = True
    staff_user.save()
    page = client.get(reverse("admin:grid_topology_tree"))
    assert page.status_code == 200
    html = page.content.decode()
    for name in (
        cp.transformer.feeder.substation.name,
        cp.transformer.feeder.name,
        cp.transformer.name,
        cp.code,
    ):
        assert name in html
    assert client.get(reverse("admin:grid_substation_changelist")).status_code == 200
    assert client.get(reverse("admin:grid_drevent_changelist")).status_code == 200


def test_staff_create_an_event_for_a_transformer_in_the_admin(client, staff_user):
    from apps.grid.models import DREvent

    cp = ConnectionPointFactory()
    other = ConnectionPointFactory(transformer=cp.transformer)
    ConnectionPointFactory()  # on another transformer: not targeted
    staff_user.is_superuser = True
    staff_user.save()
    login_with_mfa(client, staff_user)
    assert client.get(reverse("admin:grid_drevent_add")).status_code == 302
    response = client.post(
        reverse("admin:grid_drevent_create"),
        {
            "start": "2026-03-18 17:00",
            "end": "2026-03-18 19:00",
            "signal_name": "SIMPLE",
            "signal_type": "level",
            "signal_value": "2",
            "target_reduction_w": "5000",
            "transformers": [cp.transformer.pk],
            "publish": "on",
        },
    )
    assert response.status_code == 302
    event = DREvent.objects.get()
    assert event.status == DREvent.Status.PUBLISHED
    assert set(event.participations.values_list("connection_point", flat=True)) == {
        cp.pk,
        other.pk,
    }
    bad = client.post(
        reverse("admin:grid_drevent_create"),
        {
            "start": "2026-03-18 17:05",
            "end": "2026-03-18 19:00",
            "signal_name": "SIMPLE",
            "signal_type": "level",
            "signal_value": "1",
            "target_reduction_w": "0",
            "connection_points": [cp.pk],
        },
    )
    assert "15-minute interval boundaries" in bad.content.decode()


def test_member_selectors_are_one_query(member, django_assert_num_queries):
    from apps.grid.selectors import member_dr_participations, topology_tree

    ConnectionPointFactory(member=member)
    with django_assert_num_queries(1):
        list(member_dr_participations(member=member))
    with django_assert_num_queries(4):
        tree = topology_tree()
        [
            cp.code
            for s in tree
            for f in s.feeders.all()
            for t in f.transformers.all()
            for cp in t.connection_points.all()
        ]


def test_grid_dashboard_shows_which_ocpp_chargers_are_online(client, staff_user):
    from django.utils import timezone

    from apps.grid.services.ocpp import charge_point_boot, charge_point_register

    for ident in ("CP-A", "CP-B", "CP-C"):
        charge_point_register(ocpp_id=ident, password="a-long-enough-password")
    charge_point_boot(ocpp_id="CP-A", protocol="ocpp1.6")
    # Booted, but silent for an hour: not counted as online.
    charge_point_boot(ocpp_id="CP-B", protocol="ocpp2.0.1", now=timezone.now() - timedelta(hours=1))
    login_with_mfa(client, staff_user)
    html = client.get(reverse("grid:dashboard")).content.decode()
    assert "1 of 3 online." in html
    assert "CP-A</td><td>online</td><td>ocpp1.6" in html
    assert "CP-B</td><td>offline</td><td>ocpp2.0.1" in html
    assert "CP-C</td><td>offline</td><td>–" in html


def test_grid_dashboard_shows_which_openadr_vens_are_online(client, staff_user):
    from django.utils import timezone

    from apps.grid.services.openadr import (
        openadr_report_record,
        openadr_ven_provision,
        openadr_ven_register,
    )

    site = ConnectionPointFactory()
    live = openadr_ven_provision(ven_name="VEN-LIVE", connection_point=site)
    openadr_ven_provision(ven_name="VEN-SILENT")
    openadr_ven_provision(ven_name="VEN-NEW")
    openadr_ven_register(ven_name="VEN-LIVE")
    openadr_ven_register(ven_name="VEN-SILENT", now=timezone.now() - timedelta(hours=1))
    openadr_report_record(
        ven_id=live.ven_id, resource_id="x", measurement="RealPower", values=[(timezone.now(), 1)]
    )
    login_with_mfa(client, staff_user)
    html = client.get(reverse("grid:dashboard")).content.decode()
    assert "1 of 3 online." in html
    assert f"VEN-LIVE</td><td>online</td><td>{site.code}" in html
    assert "VEN-SILENT</td><td>registered, silent</td>" in html
    assert "VEN-NEW</td><td>not registered</td>" in html
