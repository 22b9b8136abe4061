"""The demo's OCPP chargers and tokens, and `demo_cooperative --print-devices`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.demo import loader
from apps.demo.hooks import grid as grid_hook
from apps.grid.models import ChargePoint, FlexibleDevice, OpenADRVen
from apps.grid.selectors import charge_point_credentials_valid, charging_token_active

NOW = datetime(2026, 11, 20, 9, 7, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def print_devices() -> dict:
    out = StringIO()
    call_command("demo_cooperative", "--print-devices", stdout=out)
    return json.loads(out.getvalue())


def test_print_devices_gives_working_ocpp_credentials_and_a_spare_charger():
    with pytest.raises(CommandError, match="run `manage.py demo_cooperative` first"):
        print_devices()
    report = loader.demo_cooperative_load(
        now=NOW, history_days=0.25, signed_days=0, run_hooks=False
    )
    grid_hook.load(report.context)
    evs = FlexibleDevice.objects.filter(kind=FlexibleDevice.Kind.EV).count()
    assert evs >= 10
    assert ChargePoint.objects.exclude(device=None).count() == evs
    assert report.context.created["charge_points"] == evs + 1

    ocpp = print_devices()["ocpp"]
    assert ocpp["url"] == f"ws://127.0.0.1:9016/ocpp/{ocpp['charge_point_id']}"
    assert charge_point_credentials_valid(
        ocpp_id=ocpp["charge_point_id"], password=ocpp["password"]
    )
    spare = ChargePoint.objects.get(ocpp_id=ocpp["spare_charge_point_id"])
    assert spare.device is None  # no simulator drives it
    assert charge_point_credentials_valid(ocpp_id=spare.ocpp_id, password=ocpp["spare_password"])
    assert not charge_point_credentials_valid(ocpp_id=spare.ocpp_id, password=ocpp["password"])
    token = charging_token_active(token=ocpp["id_tag"])
    assert token is not None and token.member == report.context.showcase_member

    openadr = print_devices()["openadr"]
    assert openadr["vtn_url"] == "http://127.0.0.1:9017/OpenADR2/Simple/2.0b"
    ven = OpenADRVen.objects.get(ven_name=openadr["ven_name"])
    spare = OpenADRVen.objects.get(ven_name=openadr["spare_ven_name"])
    assert ven.ven_id == openadr["ven_id"] and spare.ven_id == openadr["spare_ven_id"]
    assert ven != spare and spare.connection_point is not None
    sites = {d.connection_point_id for d in FlexibleDevice.objects.all()}
    assert (
        set(OpenADRVen.objects.exclude(pk=spare.pk).values_list("connection_point_id", flat=True))
        == sites
    )

    grid_hook.load(report.context)  # idempotent
    assert report.context.created["charge_points"] == 0
    assert report.context.created["openadr_vens"] == 0
    assert ChargePoint.objects.count() == evs + 1
