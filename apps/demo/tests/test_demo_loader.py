"""The demo cooperative in the real database: topology, members, meters, logins, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db.models import Count, Sum
from django.urls import reverse

from apps.accounts.models import Member, User
from apps.demo import loader
from apps.demo.keys import demo_device_identity
from apps.demo.management.commands.demo_cooperative import totp_code
from apps.demo.profiles import meter_energy_wh, spec_for_serial
from apps.grid.models import ConnectionPoint, Feeder, Substation, Transformer
from apps.meters.models import Meter
from apps.meters.signing import SignedFields, reading_digest, recover_address
from apps.meters.tests.factories import reading_versions

NOW = datetime(2026, 11, 20, 9, 7, tzinfo=UTC)  # history ends at 09:00, the last full interval

HISTORY = 0.25  # days: six hours keep the fixture fast; the command's default is 28 days
pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded():
    return loader.demo_cooperative_load(
        now=NOW, history_days=HISTORY, signed_days=0.125, run_hooks=False
    )


def _counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in (
            Substation, Feeder, Transformer, User, Member, ConnectionPoint, Meter, Authenticator,
        )
    } | {"meters.Reading": reading_versions().count()}  # fmt: skip


def test_a_second_run_creates_nothing(loaded):
    before = _counts()
    again = loader.demo_cooperative_load(
        now=NOW, history_days=HISTORY, signed_days=0.125, run_hooks=False
    )
    assert not any(again.created.values()), again.created
    assert _counts() == before
    households = len(loaded.context.community.households)
    assert before["accounts.Member"] == households + len(loader.PLANT_ACCOUNTS)


def _plant_numbers() -> list[str]:
    return [number for number, _, _ in loader.PLANT_ACCOUNTS.values()]


def test_every_member_has_a_connection_point_on_a_transformer_with_capacity(loaded):
    members = Member.objects.exclude(membership_number__in=_plant_numbers()).annotate(
        cps=Count("connection_points")
    )
    assert members.count() == len(loaded.context.members) >= 100
    assert set(members.values_list("cps", flat=True)) == {1}
    assert Member.objects.filter(street="").count() == 0
    assert set(members.values_list("kind", flat=True)) == {
        "consumer",
        "prosumer",
        "producer",
    }
    assert Transformer.objects.count() >= 3
    assert Transformer.objects.filter(capacity_kva__lte=0).count() == 0
    assert Feeder.objects.filter(capacity_kw__lte=0).count() == 0
    assert Substation.objects.get().capacity_kva > 0
    used = set(ConnectionPoint.objects.values_list("transformer__name", flat=True))
    assert used == set(Transformer.objects.values_list("name", flat=True))


def test_each_shared_plant_is_metered_on_its_own_settlement_account(loaded):
    """The market settles every member's meters: each plant's meter belongs to a settlement
    account of the cooperative that holds only that meter, has no site and cannot log in."""
    for serial, (number, _, _) in loader.PLANT_ACCOUNTS.items():
        account = Member.objects.get(membership_number=number)
        assert list(account.meters.values_list("serial", flat=True)) == [serial]
        assert account.kind == Member.Kind.PRODUCER
        assert not ConnectionPoint.objects.filter(member=account).exists()
        assert not account.user.has_usable_password() and not account.user.groups.exists()
        assert loaded.context.plant_accounts[serial] == account
        assert account not in loaded.context.members
    pv = Meter.objects.get(asset_kind=Meter.AssetKind.SHARED_PV)
    wind = Meter.objects.get(asset_kind=Meter.AssetKind.SHARED_WIND)
    assert (pv, wind) == (loaded.context.shared_pv_meter, loaded.context.shared_wind_meter)
    assert pv.direction == wind.direction == Meter.Direction.EXPORT
    assert wind.capacity_w == 500_000 and wind.connection_point is None
    # The wind plant's history is its SimBench turbine's output (here a calming night).
    spec, kind = spec_for_serial(wind.serial)
    end = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    _, exports = meter_energy_wh(spec, kind, end - timedelta(hours=6), end)
    stored = reading_versions(meter=wind).order_by("interval_start")
    assert list(stored.values_list("export_wh", flat=True)) == exports.tolist()
    assert exports[0] > exports[-1] > 0


def test_meters_carry_the_demo_device_identity(loaded):
    household = Meter.objects.filter(asset_kind=Meter.AssetKind.HOUSEHOLD)
    assert household.count() == len(loaded.context.members)
    pv_members = Meter.objects.filter(asset_kind=Meter.AssetKind.PV).values("member")
    assert set(Member.objects.filter(pk__in=pv_members).values_list("kind", flat=True)) <= {
        "prosumer",
        "producer",
    }
    for meter in Meter.objects.all()[:20]:
        assert (meter.public_key, meter.address) == demo_device_identity(meter.serial)


def test_each_role_has_a_demo_login(loaded, client):
    staff = User.objects.get(email=loader.STAFF_EMAIL)
    auditor = User.objects.get(email=loader.AUDITOR_EMAIL)
    member = User.objects.get(email=loader.SHOWCASE_EMAIL)
    assert staff.is_staff and staff.is_superuser
    assert staff.groups.filter(name="staff").exists()
    assert auditor.groups.filter(name="auditor").exists() and not auditor.is_superuser
    assert member.groups.filter(name="member").exists() and not member.is_staff
    assert Group.objects.get(name="member").user_set.count() == len(
        loaded.context.community.households
    )
    for user in (staff, auditor, member):
        assert user.check_password(loader.DEMO_PASSWORD)
    assert Authenticator.objects.filter(user=staff, type=Authenticator.Type.TOTP).exists()
    showcase = member.member
    assert {m.asset_kind for m in showcase.meters.all()} >= {"household", "pv", "battery"}
    assert showcase.kind == Member.Kind.PROSUMER
    # The member logs in through the real login page with the printed password.
    response = client.post(
        reverse("account_login"),
        {"login": loader.SHOWCASE_EMAIL, "password": loader.DEMO_PASSWORD},
    )
    assert response.status_code == 302
    assert client.get(reverse("account_login")).wsgi_request.user == member


@pytest.mark.parametrize("email", [loader.STAFF_EMAIL, loader.AUDITOR_EMAIL])
def test_staff_and_auditor_log_in_with_password_and_the_printed_totp_code(loaded, client, email):
    response = client.post(
        reverse("account_login"), {"login": email, "password": loader.DEMO_PASSWORD}
    )
    assert response.status_code == 302 and "/2fa/" in response["Location"]
    assert client.get(reverse("admin:index")).status_code == 302  # not in yet: TOTP first
    response = client.post(response["Location"], {"code": totp_code(loader.DEMO_TOTP_SECRET)})
    assert response.status_code == 302, response.content[:500]
    assert client.get(reverse("admin:index")).status_code == 200


def test_printed_totp_code_is_accepted_by_allauth(loaded):
    from allauth.mfa.totp.internal.auth import TOTP

    staff = User.objects.get(email=loader.STAFF_EMAIL)
    authenticator = Authenticator.objects.get(user=staff, type=Authenticator.Type.TOTP)
    assert TOTP(authenticator).validate_code(totp_code(loader.DEMO_TOTP_SECRET))
    assert not TOTP(authenticator).validate_code("000000" if totp_code(
        loader.DEMO_TOTP_SECRET) != "000000" else "111111")  # fmt: skip


def test_history_covers_every_meter_up_to_the_last_complete_interval(loaded):
    end = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    per_meter = reading_versions().values("meter").annotate(n=Count("*"))
    assert {row["n"] for row in per_meter} == {24}
    assert per_meter.count() == Meter.objects.count()
    assert reading_versions(interval_start__gte=end).count() == 0
    # The stored energy is the profile's energy, meter by meter.
    spec = loaded.context.community.household(loaded.context.community.showcase_number)
    for meter in Meter.objects.filter(member__user__email=loader.SHOWCASE_EMAIL):
        kind = {"household": "load"}.get(meter.asset_kind, meter.asset_kind)
        imports, exports = meter_energy_wh(spec, kind, end - timedelta(hours=6), end)
        stored = reading_versions(meter=meter).aggregate(i=Sum("import_wh"), e=Sum("export_wh"))
        assert (stored["i"], stored["e"]) == (int(imports.sum()), int(exports.sum()))


def test_recent_readings_are_device_signed(loaded):
    meter = Meter.objects.get(serial=f"DEMO-{loaded.context.community.showcase_number:03d}-PV")
    reading = reading_versions(meter=meter).order_by("-interval_start").first()
    fields = SignedFields(
        meter.serial,
        reading.seq,
        int(reading.interval_start.timestamp()),
        reading.interval_seconds,
        reading.import_wh,
        reading.export_wh,
        reading.register_import_wh,
        reading.register_export_wh,
        reading.status,
    )
    assert recover_address(reading_digest(fields), bytes(reading.signature)) == meter.address


def test_a_later_run_tops_the_history_up(loaded):
    later = NOW + timedelta(hours=2)
    again = loader.demo_cooperative_load(
        now=later, history_days=HISTORY, signed_days=0.125, run_hooks=False
    )
    assert again.readings == 8 * Meter.objects.count()
    assert {k for k, v in again.created.items() if v} == {"meters.reading"}


@pytest.mark.slow
def test_command_runs_the_app_hooks_and_is_idempotent():
    """The real command, every app's demo step included (slow: the hooks issue certificates)."""
    hooks = [label for label, _ in loader.demo_hooks()]
    assert hooks == ["market", "grid", "incentives", "billing", "cockpit"]
    args = ("--history-days", "1", "--signed-days", "0", "--now", "2026-11-20T09:07Z")
    out = StringIO()
    call_command("demo_cooperative", *args, stdout=out)
    assert "118 members" in out.getvalue()
    assert "2026-11-20 09:00 UTC" in out.getvalue()
    assert all(f"hook:{label}" in out.getvalue() for label in hooks)
    before = _counts()
    out = StringIO()
    call_command("demo_cooperative", *args, stdout=out)
    assert "created nothing" in out.getvalue()
    assert _counts() == before


def test_a_failing_hook_is_reported_and_the_others_still_run(monkeypatch):
    ran = []

    def broken(context):
        raise RuntimeError("boom")

    def fine(context):
        ran.append(context.showcase_member.user.email)
        context.created["fine things"] = 1

    monkeypatch.setattr(loader, "demo_hooks", lambda: [("broken", broken), ("fine", fine)])
    report = loader.demo_cooperative_load(now=NOW, history_days=0, signed_days=0)
    assert ran == [loader.SHOWCASE_EMAIL]
    assert "RuntimeError: boom" in report.hook_errors["broken"]
    assert report.created["fine things"] == 1
    with pytest.raises(CommandError, match="broken"):
        call_command("demo_cooperative", "--history-days", "0", stdout=StringIO(), stderr=None)


@pytest.mark.django_db(transaction=True)
def test_the_incentives_step_commits_as_it_goes_the_others_in_one_transaction(monkeypatch):
    """Certificates commit per device-hour (their meters' row locks are not held for the whole
    step, which would stall the ingest workers); every other step is all-or-nothing."""
    from django.db import connection

    in_transaction: dict[str, bool] = {}

    def step(label):
        def load(context):
            in_transaction[label] = connection.in_atomic_block

        return load

    monkeypatch.setattr(
        loader, "demo_hooks", lambda: [(label, step(label)) for label in ("grid", "incentives")]
    )
    loader.demo_cooperative_load(now=NOW, history_days=0, signed_days=0)
    assert in_transaction == {"grid": True, "incentives": False}


def test_meters_last_seen_comes_from_the_history(loaded):
    """The staff ingest page lists no meter as "never heard from" right after loading."""
    end = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert set(Meter.objects.values_list("last_seen", flat=True)) == {end}


def test_live_intervals_leave_the_latest_intervals_to_the_simulator():
    report = loader.demo_cooperative_load(
        now=NOW, history_days=HISTORY, signed_days=0, run_hooks=False, live_intervals=1
    )
    end = datetime(2026, 11, 20, 8, 45, tzinfo=UTC)
    assert report.context.now == end
    assert reading_versions(interval_start__gte=end).count() == 0
    assert reading_versions(interval_start=end - timedelta(minutes=15)).count() == 212


def test_the_portal_says_preparing_while_the_demo_steps_run(monkeypatch, client):
    from apps.portal.selectors import demo_preparing

    seen = []

    def step(context):
        seen.append(demo_preparing())
        seen.append("Preparing the demo" in client.get("/accounts/login/").content.decode())

    def other(context):
        seen.append("other ran")

    monkeypatch.setattr(loader, "demo_hooks", lambda: [("step", step), ("other", other)])
    report = loader.demo_cooperative_load(now=NOW, history_days=0, signed_days=0, hooks=["step"])
    assert seen == [True, True]  # the step ran with the banner up; the other was not asked for
    assert not report.hook_errors
    assert not demo_preparing()
    assert "Preparing the demo" not in client.get("/accounts/login/").content.decode()
    with pytest.raises(CommandError, match="Unknown demo step"):
        call_command("demo_cooperative", "--hooks", "nope", stdout=StringIO())


def test_hooks_only_skips_the_history(loaded):
    report = loader.demo_cooperative_load(
        now=NOW + timedelta(hours=1), history_days=HISTORY, run_history=False, run_hooks=False
    )
    assert report.readings == 0 and not any(report.created.values())


def test_print_logins_names_every_role():
    out = StringIO()
    call_command("demo_cooperative", "--print-logins", stdout=out)
    text = out.getvalue()
    for email in (loader.STAFF_EMAIL, loader.AUDITOR_EMAIL, loader.SHOWCASE_EMAIL):
        assert email in text
    assert loader.DEMO_PASSWORD in text and "--totp" in text
