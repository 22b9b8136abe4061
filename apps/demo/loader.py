"""Load the demo cooperative into the database (service; see docs/demo.md).

`demo_cooperative_load` is idempotent: every row has a stable natural key (names, emails,
membership numbers, connection-point codes, meter serials); existing rows are left alone and
only what is missing is created. Interval history is filled per meter from its latest stored
reading up to the last complete 15-minute interval, so a re-run right after a run writes no
readings, and a run a day later tops the history up.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Member, Role, User
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.demo.context import DemoContext
from apps.demo.hooks import billing as billing_hook
from apps.demo.hooks import cockpit as cockpit_hook
from apps.demo.hooks import grid as grid_hook
from apps.demo.hooks import incentives as incentives_hook
from apps.demo.hooks import market as market_hook
from apps.demo.keys import demo_device_identity, demo_device_key
from apps.demo.profiles import (
    DEMO_SEED,
    SHARED_PV_SERIAL,
    SHARED_WIND_SERIAL,
    Community,
    HouseholdSpec,
    community,
    meter_serial,
    spec_for_serial,
)
from apps.demo.profiles import meter_energy_wh as spec_meter_energy_wh
from apps.grid.models import ConnectionPoint, Feeder, Substation, Transformer
from apps.meters.models import Meter
from apps.portal.selectors import DEMO_PREPARING_CACHE_KEY, DEMO_PREPARING_TIMEOUT_S

logger = logging.getLogger(__name__)

DEMO_DOMAIN = "demo.energysphere.coop"
# DEMO ONLY — printed by `demo_cooperative --print-logins`; never use outside the demo.
DEMO_PASSWORD = "energysphere-demo"  # noqa: S105
# Fixed base32 TOTP secret of the demo staff and auditor users, so `--totp` can print codes.
DEMO_TOTP_SECRET = "ENERGYSPHEREDEMOTOTPSECRET234567"  # noqa: S105
STAFF_EMAIL = f"staff@{DEMO_DOMAIN}"
AUDITOR_EMAIL = f"auditor@{DEMO_DOMAIN}"
SHOWCASE_EMAIL = f"member@{DEMO_DOMAIN}"
HISTORY_DAYS = 28
SIGNED_DAYS = 1  # the chain anchors the last two hours; older history is imported, unsigned
METERS_ACTIVE_FROM = datetime(2024, 1, 1, tzinfo=UTC)
_STEP = timedelta(minutes=15)

# Meter per asset: (Meter.AssetKind, Meter.Direction)
_METERS = {
    "load": (Meter.AssetKind.HOUSEHOLD, Meter.Direction.IMPORT),
    "pv": (Meter.AssetKind.PV, Meter.Direction.EXPORT),
    "battery": (Meter.AssetKind.BATTERY, Meter.Direction.BIDIRECTIONAL),
    "ev": (Meter.AssetKind.EV, Meter.Direction.IMPORT),
    "heat_pump": (Meter.AssetKind.HEAT_PUMP, Meter.Direction.IMPORT),
    "wind": (Meter.AssetKind.SHARED_WIND, Meter.Direction.EXPORT),
}
# Each shared plant's settlement account (docs/incentives.md, "Shared plants that pay"): a member
# account of the cooperative itself holding only that plant's meter, so the market settles the
# plant's output. Serial -> (membership number, e-mail local part, legal name). The accounts
# cannot log in (no password, no role) and place no orders: their output is sold at the feed-in
# price.
PLANT_ACCOUNTS = {
    SHARED_PV_SERIAL: (
        "DEMO-PLANT-PV",
        "plant-pv",
        "Energiegenossenschaft Lindenhagen eG – Bürgersolaranlage",
    ),
    SHARED_WIND_SERIAL: (
        "DEMO-PLANT-WIND",
        "plant-wind",
        "Energiegenossenschaft Lindenhagen eG – Windanteil MV1.101",
    ),
}

_FIRST = (
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Karla",
    "Lukas", "Mia", "Niklas", "Olga", "Paul", "Rosa", "Simon", "Thea", "Uwe", "Vera", "Willi",
    "Yara", "Zoe", "Marta", "Erik", "Lena", "Theo", "Frieda", "Oskar", "Helga", "Moritz",
)  # fmt: skip
_LAST = (
    "Albers", "Brandt", "Claussen", "Dittmann", "Ehlers", "Fischer", "Gerdes", "Hansen",
    "Iwersen", "Jürgens", "Krüger", "Lange", "Möller", "Nagel", "Ohlsen", "Peters", "Quandt",
    "Rohde", "Schulz", "Thiele", "Vogt", "Wendt", "Zander", "Behrens", "Koch", "Martens",
    "Schröder", "Wolter", "Voß", "Lüdemann", "Harms", "Timm", "Kühl",
)  # fmt: skip
_BUSINESSES = {
    "G1": "Hofladen",
    "G4": "Bäckerei",
    "G5": "Kfz-Werkstatt",
    "G6": "Gasthof",
}
_CITY = "Lindenhagen"
_POSTAL_CODE = "19999"


def membership_number(number: int) -> str:
    return f"DEMO-{number:04d}"


def member_email(spec: HouseholdSpec, showcase_number: int) -> str:
    return SHOWCASE_EMAIL if spec.number == showcase_number else f"{spec.key}@{DEMO_DOMAIN}"


def _person(number: int) -> tuple[str, str]:
    return _FIRST[(number * 7) % len(_FIRST)], _LAST[(number * 11 + number // 3) % len(_LAST)]


def _legal_name(spec: HouseholdSpec) -> str:
    first, last = _person(spec.number)
    if spec.kind == "business":
        return f"{_BUSINESSES.get(spec.load_profile[:2], 'Betrieb')} {last}"
    return f"{first} {last}"


def _joined(spec: HouseholdSpec) -> date:
    # Founding members in 2019, then a few joining every month (stable per member).
    return date(2019, 3, 1) + timedelta(days=(spec.number * 137) % 1800)


def last_complete_interval_end(now: datetime | None = None) -> datetime:
    now = (now or timezone.now()).astimezone(UTC)
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % 900, tz=UTC)


@dataclass
class LoadReport:
    context: DemoContext
    created: dict[str, int]
    readings: int
    seconds: dict[str, float] = field(default_factory=dict)
    hook_errors: dict[str, str] = field(default_factory=dict)


# --- Base data --------------------------------------------------------------------------------


def _value(obj, name: str) -> Any:
    field_ = obj._meta.get_field(name)
    return getattr(obj, field_.attname)  # the id for a foreign key: no query


def _value_of(value: Any) -> Any:
    return value.pk if hasattr(value, "_meta") else value


def _ensure(
    model,
    key: str,
    wanted: dict[str, dict[str, Any]],
    created: dict[str, int],
    update: tuple[str, ...] = (),
):
    """Rows of `model` by natural key `key`: create the missing ones in one statement, and bring
    the `update` fields of existing rows back to the demo's values (so a demo database from an
    older version converges; a second run finds nothing to do)."""
    existing = {getattr(o, key): o for o in model.objects.filter(**{f"{key}__in": list(wanted)})}
    missing = [model(**{key: k, **values}) for k, values in wanted.items() if k not in existing]
    if missing:
        model.objects.bulk_create(missing)
        existing.update(
            {getattr(o, key): o for o in model.objects.filter(**{f"{key}__in": list(wanted)})}
        )
    changed = []
    for k, values in wanted.items():
        obj = existing[k]
        drift = [f for f in update if _value(obj, f) != _value_of(values[f])]
        for f in drift:
            setattr(obj, f, values[f])
        if drift:
            changed.append(obj)
    if changed:
        model.objects.bulk_update(changed, list(update))
    label = model._meta.label_lower
    created[label] = created.get(label, 0) + len(missing)
    if changed:
        created[f"{label} (updated)"] = created.get(f"{label} (updated)", 0) + len(changed)
    return existing


def _topology(c: Community, created: dict[str, int]):
    s = c.substation
    substations = _ensure(
        Substation,
        "name",
        {
            s.name: {
                "voltage_kv": s.voltage_kv,
                "capacity_kva": s.capacity_kva,
                "latitude": s.lat,
                "longitude": s.lon,
            }
        },
        created,
        update=("voltage_kv", "capacity_kva"),
    )
    substation = substations[s.name]
    feeders = _ensure(
        Feeder,
        "name",
        {f.name: {"substation": substation, "capacity_kw": f.capacity_kw} for f in c.feeders},
        created,
        update=("substation", "capacity_kw"),
    )
    transformers = _ensure(
        Transformer,
        "name",
        {
            t.name: {
                "feeder": feeders[t.feeder],
                "capacity_kva": t.capacity_kva,
                "vk_percent": t.vk_percent,
                "vkr_percent": t.vkr_percent,
            }
            for t in c.transformers
        },
        created,
        update=("feeder", "capacity_kva", "vk_percent", "vkr_percent"),
    )
    return substation, [feeders[f.name] for f in c.feeders], transformers


def _users(c: Community, created: dict[str, int]) -> dict[str, User]:
    # One PBKDF2 hash for every demo user: hashing ~120 passwords would take most of a minute.
    password = make_password(DEMO_PASSWORD)
    wanted: dict[str, dict[str, Any]] = {}
    for spec in c.households:
        first, last = _person(spec.number)
        wanted[member_email(spec, c.showcase_number)] = {
            "first_name": first if spec.kind == "household" else "",
            "last_name": last if spec.kind == "household" else _legal_name(spec),
            "password": password,
        }
    wanted[STAFF_EMAIL] = {
        "first_name": "Sabine",
        "last_name": "Staff",
        "password": password,
        "is_staff": True,
        "is_superuser": True,
    }
    wanted[AUDITOR_EMAIL] = {"first_name": "Arne", "last_name": "Auditor", "password": password}
    for _number, local, legal_name in PLANT_ACCOUNTS.values():
        # No login: an unusable password and no role.
        wanted[f"{local}@{DEMO_DOMAIN}"] = {
            "last_name": legal_name,
            "password": make_password(None),
        }
    return _ensure(User, "email", wanted, created)


def _roles(users: dict[str, User], members_emails: list[str], created: dict[str, int]) -> None:
    """Staff and auditor through `user_role_grant` (it also sets is_staff); the ~120 members in
    one statement, with the same audit row per user the service writes."""
    from django.contrib.auth.models import Group

    from apps.accounts.services import user_role_grant

    have = set(
        User.groups.through.objects.filter(user_id__in=[u.pk for u in users.values()]).values_list(
            "user_id", "group__name"
        )
    )
    count = 0
    for email, role in ((STAFF_EMAIL, Role.STAFF), (AUDITOR_EMAIL, Role.AUDITOR)):
        if (users[email].pk, role.value) not in have:
            user_role_grant(user=users[email], role=role.value)
            count += 1
    missing = [users[e] for e in members_emails if (users[e].pk, Role.MEMBER.value) not in have]
    if missing:
        group, _ = Group.objects.get_or_create(name=Role.MEMBER.value)
        group.user_set.add(*missing)
        for user in missing:
            audit_log_write(
                event=AuditEvent.USER_ROLE_GRANTED,
                target=user,
                details={"role": Role.MEMBER.value, "via": "demo_cooperative"},
            )
    created["role_grants"] = created.get("role_grants", 0) + count + len(missing)


def _totp(users: list[User], created: dict[str, int]) -> None:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    have = set(
        Authenticator.objects.filter(user__in=users, type=Authenticator.Type.TOTP).values_list(
            "user_id", flat=True
        )
    )
    count = 0
    for user in users:
        if user.pk not in have:
            TOTP.activate(user, DEMO_TOTP_SECRET)
            count += 1
    created["mfa.authenticator"] = created.get("mfa.authenticator", 0) + count


def _meter_values(spec: HouseholdSpec, asset: str, cp, member) -> dict[str, Any]:
    serial = meter_serial(spec, asset)
    public_key, address = demo_device_identity(serial)
    asset_kind, direction = _METERS[asset]
    if spec.kind == "plant" and asset == "pv":
        asset_kind = Meter.AssetKind.SHARED_PV
    return {
        "member": member,
        "connection_point": cp,
        "asset_kind": asset_kind,
        "direction": direction,
        "capacity_w": spec.capacity_w(asset),
        "public_key": public_key,
        "address": address,
        "active_from": METERS_ACTIVE_FROM,
        "firmware_version": "demo-1.0",
    }


@transaction.atomic
def _base_data(c: Community, created: dict[str, int]) -> dict[str, Any]:
    substation, feeders, transformers = _topology(c, created)
    users = _users(c, created)
    plant_address = f"{c.shared_pv.street} {c.shared_pv.house_number}"
    accounts = {
        number: {
            "user": users[f"{local}@{DEMO_DOMAIN}"],
            "legal_name": legal_name,
            "kind": Member.Kind.PRODUCER,
            "status": Member.Status.ACTIVE,
            "joined": METERS_ACTIVE_FROM.date(),
            "street": plant_address,  # the cooperative's office at its community plant
            "postal_code": _POSTAL_CODE,
            "city": _CITY,
            "country": "DE",
        }
        for number, local, legal_name in PLANT_ACCOUNTS.values()
    }
    members = _ensure(
        Member,
        "membership_number",
        accounts
        | {
            membership_number(spec.number): {
                "user": users[member_email(spec, c.showcase_number)],
                "legal_name": _legal_name(spec),
                "kind": spec.member_kind,
                "status": Member.Status.ACTIVE,
                "joined": _joined(spec),
                "street": f"{spec.street} {spec.house_number}",
                "postal_code": _POSTAL_CODE,
                "city": _CITY,
                "country": "DE",
            }
            for spec in c.households
        },
        created,
        update=("legal_name", "kind", "street", "postal_code", "city"),
    )
    member_of = {spec.number: members[membership_number(spec.number)] for spec in c.households}
    _roles(users, [member_email(s, c.showcase_number) for s in c.households], created)
    _totp([users[STAFF_EMAIL], users[AUDITOR_EMAIL]], created)

    cps = _ensure(
        ConnectionPoint,
        "code",
        {
            f"DEMO-CP-{spec.number:03d}": {
                "member": member_of[spec.number],
                "transformer": transformers[spec.transformer],
                "bus_name": spec.bus,
                "latitude": spec.lat,
                "longitude": spec.lon,
                "contracted_power_w": spec.capacity_w("load"),
            }
            for spec in c.households
        },
        created,
        update=("transformer", "bus_name", "contracted_power_w"),
    )
    cp_of = {spec.number: cps[f"DEMO-CP-{spec.number:03d}"] for spec in c.households}
    wanted_meters = {
        meter_serial(spec, asset): _meter_values(
            spec, asset, cp_of[spec.number], member_of[spec.number]
        )
        for spec in c.households
        for asset in spec.assets
    }
    plant_of = {serial: members[number] for serial, (number, _, _) in PLANT_ACCOUNTS.items()}
    wanted_meters[SHARED_PV_SERIAL] = _meter_values(
        c.shared_pv, "pv", None, plant_of[SHARED_PV_SERIAL]
    )
    wanted_meters[SHARED_WIND_SERIAL] = _meter_values(
        c.shared_wind, "wind", None, plant_of[SHARED_WIND_SERIAL]
    )
    meters = _ensure(
        Meter,
        "serial",
        wanted_meters,
        created,
        update=("member", "asset_kind", "direction", "capacity_w", "public_key", "address"),
    )
    if any(created.values()):
        audit_log_write(
            event=AuditEvent.DEMO_COOPERATIVE_LOADED,
            target_type="accounts.member",
            details={"seed": c.seed, "source": c.source, "created": dict(created)},
        )
    return {
        "substation": substation,
        "feeders": feeders,
        "transformers": [transformers[t.name] for t in c.transformers],
        "users": users,
        "members": member_of,
        "plant_accounts": plant_of,
        "connection_points": cp_of,
        "meters": meters,
    }


# --- Interval history -------------------------------------------------------------------------


def _history(
    c: Community,
    meters: dict[str, Meter],
    *,
    start: datetime,
    end: datetime,
    signed_from: datetime,
) -> int:
    """Backfill every meter from its latest reading (or `start`) up to `end`; return inserted.

    Older, unsigned rows go first in batches; the device-signed recent rows (from `signed_from`)
    go last in one call, so the meters service signs them in its process pool and every meter's
    registers keep increasing with time.
    """
    from apps.meters.selectors import meter_last_interval_starts
    from apps.meters.services import BackfillRow, readings_backfill

    latest = meter_last_interval_starts(meter_ids=[m.pk for m in meters.values()], since=start)
    inserted = 0
    older: list[BackfillRow] = []
    recent: list[BackfillRow] = []
    signed_epoch = int(signed_from.timestamp())
    moments: dict[int, datetime] = {}  # the same interval starts recur for every meter
    for serial in sorted(meters):
        meter = meters[serial]
        spec, kind = spec_for_serial(serial, c.seed)
        first = latest[meter.pk] + _STEP if meter.pk in latest else start
        if first >= end:
            continue
        imports, exports = spec_meter_energy_wh(spec, kind, first, end)
        key = demo_device_key(serial)
        first_epoch = int(first.timestamp())
        for i, (imp, exp) in enumerate(zip(imports.tolist(), exports.tolist(), strict=True)):
            epoch = first_epoch + 900 * i
            signed = epoch >= signed_epoch
            (recent if signed else older).append(
                BackfillRow(
                    meter_id=meter.pk,
                    interval_start=moments.get(epoch)
                    or moments.setdefault(epoch, datetime.fromtimestamp(epoch, tz=UTC)),
                    import_wh=imp,
                    export_wh=exp,
                    seq=epoch // 900,  # what the meters service and simulator use
                    private_key=key if signed else None,
                )
            )
        if len(older) >= 100_000:
            inserted += readings_backfill(rows=older)
            older = []
    if older:
        inserted += readings_backfill(rows=older)
    if recent:
        inserted += readings_backfill(rows=recent)
    return inserted


# --- Per-app demo steps ----------------------------------------------------------------------


def demo_hooks() -> list[tuple[str, Callable[[DemoContext], Any]]]:
    """(app label, load) of every app's demo step (`apps/demo/hooks/<app>.py`), in the order
    they run; a later step may read what an earlier one left in `context.extra`. The market
    goes first: it is what a visitor sees first (trades and prices of the last 24 hours)."""
    return [
        ("market", market_hook.load),
        ("grid", grid_hook.load),
        ("incentives", incentives_hook.load),
        ("billing", billing_hook.load),
        ("cockpit", cockpit_hook.load),  # staff home work items (quarantine, a conflict)
    ]


# Steps that commit in small transactions of their own (the incentives step issues certificates
# per device-hour: one transaction would hold every producing meter's row lock for minutes and
# stall the ingest workers waiting for those meters). Each is idempotent, so an interrupted step
# is completed by the next run.
STEPS_COMMITTING_IN_CHUNKS = frozenset({"incentives"})


def _hooks_run(
    context: DemoContext,
    seconds: dict[str, float],
    errors: dict[str, str],
    only: list[str] | None = None,
) -> None:
    """Every app's demo step (or those in `only`) in its own transaction (except those in
    `STEPS_COMMITTING_IN_CHUNKS`, which commit as they go); meanwhile the portal
    shows a "preparing the demo" banner (a cache flag with a timeout, cleared at the end even if
    a step fails)."""
    steps = [(label, load) for label, load in demo_hooks() if only is None or label in only]
    unknown = set(only or ()) - {label for label, _ in demo_hooks()}
    if unknown:
        raise ValueError(f"unknown demo step(s): {', '.join(sorted(unknown))}")
    cache.set(DEMO_PREPARING_CACHE_KEY, context.now.isoformat(), DEMO_PREPARING_TIMEOUT_S)
    try:
        for label, load in steps:
            t2 = time.perf_counter()
            try:
                if label in STEPS_COMMITTING_IN_CHUNKS:
                    load(context)
                else:
                    with transaction.atomic():
                        load(context)
            except Exception:  # noqa: BLE001 - one app's failure must not hide the others'
                errors[label] = traceback.format_exc()
                logger.error("demo step %s failed", label, exc_info=True)
            seconds[f"hook:{label}"] = time.perf_counter() - t2
    finally:
        cache.delete(DEMO_PREPARING_CACHE_KEY)


# --- The service ------------------------------------------------------------------------------


def demo_cooperative_load(
    *,
    seed: int = DEMO_SEED,
    now: datetime | None = None,
    history_days: float = HISTORY_DAYS,
    signed_days: float = SIGNED_DAYS,
    run_hooks: bool = True,
    run_history: bool = True,
    live_intervals: int = 0,
    hooks: list[str] | None = None,
) -> LoadReport:
    """Create whatever of the demo cooperative is missing, top up its reading history, then run
    every app's `demo.load(context)`. Idempotent. `now` (default: the current time) sets the end
    of the history: the last complete 15-minute interval before it. `run_history=False` skips the
    reading top-up (e.g. to run only the app hooks in the background after a `--no-hooks` run).
    `hooks` runs only the demo steps with these labels (default: all, in `demo_hooks` order).
    `live_intervals=N` ends the history N intervals earlier: `make run` leaves the latest complete
    interval to the meter simulator, so readings arrive over MQTT from the first minute.

    Not one transaction: the base data is atomic, the history commits per backfill batch (half a
    million rows) and each hook runs in its own transaction; every step is idempotent, so an
    interrupted run is completed by the next one."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    c = community(seed)
    created: dict[str, int] = {}
    base = _base_data(c, created)
    seconds["base"] = time.perf_counter() - t0

    end = last_complete_interval_end(now) - live_intervals * _STEP
    start = end - timedelta(days=history_days)
    t1 = time.perf_counter()
    readings = 0
    if run_history:
        readings = _history(
            c,
            base["meters"],
            start=start,
            end=end,
            signed_from=end - timedelta(days=signed_days),
        )
    created["meters.reading"] = readings
    seconds["history"] = time.perf_counter() - t1

    members = list(base["members"].values())
    meters_by_member: dict[int, list[Meter]] = {m.pk: [] for m in members}
    for serial in sorted(base["meters"]):
        meter = base["meters"][serial]
        if meter.member_id in meters_by_member:
            meters_by_member[meter.member_id].append(meter)
    context = DemoContext(
        community=c,
        members=members,
        specs={base["members"][spec.number].pk: spec for spec in c.households},
        meters=[base["meters"][s] for s in sorted(base["meters"])],
        meters_by_member=meters_by_member,
        substation=base["substation"],
        feeders=base["feeders"],
        transformers=base["transformers"],
        connection_points={
            base["members"][n].pk: cp for n, cp in base["connection_points"].items()
        },
        shared_pv_meter=base["meters"][SHARED_PV_SERIAL],
        shared_wind_meter=base["meters"][SHARED_WIND_SERIAL],
        plant_accounts=base["plant_accounts"],
        staff_user=base["users"][STAFF_EMAIL],
        auditor_user=base["users"][AUDITOR_EMAIL],
        showcase_member=base["members"][c.showcase_number],
        now=end,
        history_start=start,
        seed=seed,
        created=created,
    )
    hook_errors: dict[str, str] = {}
    if run_hooks:
        _hooks_run(context, seconds, hook_errors, only=hooks)
    seconds["total"] = time.perf_counter() - t0
    return LoadReport(
        context=context,
        created=created,
        readings=readings,
        seconds=seconds,
        hook_errors=hook_errors,
    )
