"""Synthetic cooperative for `make bench BENCH=scale`: members, topology, meters and readings.

Profiles come from the demo's sources (`apps.demo.profiles`, SimBench households with PV,
batteries, EVs and heat pumps): synthetic site `s` copies the meters of demo household
`s mod 120` and perturbs them per site (annual scale, a shift of up to ±1 h, PV yield) and per
meter and interval (log-normal noise), seeded by the site number, so any window of any meter is
reproducible. Readings are written as the ingest path stores them (version 1, current, every
signed field but the signature, quality valid with a sprinkle of interpolated estimates,
registers increasing), straight into the month partitions with binary COPY from a generator, in
time order as ingest writes them: memory stays bounded by one day of every meter. The rollups
of the loaded history are built set-based a day at a time (`rollups_build_bulk`, the same sums as
the meters app's `rollups_refresh`, which `rollups_differences` checks on sample hours).

Used by bench/bench_scale.py and, at a tiny size, by tests/test_bench_scale.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

STEP = 900
DAY = 86_400
ESTIMATE_SHARE = 0.003  # share of intervals stored as linear-interpolation estimates (quality 9)
MEMBERS_PER_TRANSFORMER = 30  # the demo: ~120 households behind 4 transformers
TRANSFORMERS_PER_FEEDER = 10
PREFIX = "SCALE"

_COPY = (
    "COPY meters_reading (meter_id, interval_start, version, is_current, interval_seconds, "
    "import_wh, export_wh, register_import_wh, register_export_wh, status, seq, signature, "
    "quality, flags, source, reason, raw_message_id, ingested_at) FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = ["int8", "timestamptz", "int2", "bool", "int4", "int8", "int8", "int8", "int8",
               "int8", "int8", "bytea", "int2", "int4", "text", "text", "int8",
               "timestamptz"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class SyntheticMeter:
    meter_id: int
    serial: str
    member_id: int
    site: int  # synthetic site number (seed of its perturbation)
    base: int  # index of the demo meter it copies
    kind: str  # demo asset kind: load, pv, battery, ev, heat_pump


@dataclass
class Cooperative:
    """The generated cooperative. Readings cover [horizon_start, end); a window of it is loaded."""

    meters: list[SyntheticMeter]
    member_ids: list[int]
    transformer_ids: list[int]
    horizon_start: datetime
    end: datetime
    base_series: list[tuple[str, np.ndarray, np.ndarray]]  # (kind, import, export) per demo meter

    def serial_of(self, meter_id: int) -> str:
        return next(m.serial for m in self.meters if m.meter_id == meter_id)


def interval_floor(moment: datetime) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % STEP, tz=UTC)


def _demo_base(horizon_start: datetime, end: datetime) -> tuple[list, list]:
    """(households, [(kind, import, export)] per demo meter over the horizon)."""
    from apps.demo import profiles

    c = profiles.community()
    series = []
    sites = []
    for spec in c.households:
        first = len(series)
        for kind in spec.assets:
            imp, exp = profiles.meter_energy_wh(spec, kind, horizon_start, end)
            series.append((kind, imp, exp))
        sites.append((spec, list(range(first, len(series)))))
    return sites, series


def cooperative_create(*, meters: int, end: datetime, horizon_days: int) -> Cooperative:
    """Topology, users, members (member role), connection points and `meters` meters (each with
    a deterministic device key, so single intervals can be signed and anchored)."""
    from django.contrib.auth.models import Group

    from apps.accounts.models import Member, Role, User
    from apps.demo.keys import demo_device_identity
    from apps.grid.models import ConnectionPoint, Feeder, Substation, Transformer
    from apps.market.models import Tariff
    from apps.meters.models import Meter

    end = interval_floor(end)
    horizon_start = end - timedelta(days=horizon_days)
    sites, series = _demo_base(horizon_start, end)
    plan: list[tuple[int, int]] = []  # (site, demo meter index) per synthetic meter
    site = 0
    while len(plan) < meters:
        _, indexes = sites[site % len(sites)]
        plan += [(site, i) for i in indexes][: meters - len(plan)]
        site += 1
    n_sites = site
    n_transformers = max(1, math.ceil(n_sites / MEMBERS_PER_TRANSFORMER))
    n_feeders = max(1, math.ceil(n_transformers / TRANSFORMERS_PER_FEEDER))

    substation = Substation.objects.create(name=f"{PREFIX} substation", capacity_kva=100_000)
    feeders = Feeder.objects.bulk_create(
        [Feeder(substation=substation, name=f"{PREFIX} F{f:03d}", capacity_kw=4_000)
         for f in range(n_feeders)]
    )  # fmt: skip
    transformers = Transformer.objects.bulk_create(
        [Transformer(feeder=feeders[t // TRANSFORMERS_PER_FEEDER], name=f"{PREFIX} T{t:04d}",
                     capacity_kva=630) for t in range(n_transformers)]
    )  # fmt: skip
    users = User.objects.bulk_create(
        [User(email=f"scale{s:06d}@bench.test", password="!") for s in range(n_sites)],  # noqa: S106
        batch_size=2000,
    )
    members = Member.objects.bulk_create(
        [Member(user=u, membership_number=f"S{s:06d}", legal_name=f"Scale member {s}",
                street=f"Feldweg {s}", postal_code="12345", city="Bench")
         for s, u in enumerate(users)], batch_size=2000,
    )  # fmt: skip
    group, _ = Group.objects.get_or_create(name=Role.MEMBER.value)
    User.groups.through.objects.bulk_create(
        [User.groups.through(user_id=u.pk, group_id=group.pk) for u in users], batch_size=5000
    )
    cps = ConnectionPoint.objects.bulk_create(
        [ConnectionPoint(member=m, transformer=transformers[s // MEMBERS_PER_TRANSFORMER],
                         code=f"{PREFIX}-CP-{s:06d}") for s, m in enumerate(members)],
        batch_size=2000,
    )  # fmt: skip
    kinds = {
        "load": Meter.AssetKind.HOUSEHOLD, "pv": Meter.AssetKind.PV,
        "battery": Meter.AssetKind.BATTERY, "ev": Meter.AssetKind.EV,
        "heat_pump": Meter.AssetKind.HEAT_PUMP,
    }  # fmt: skip
    rows = []
    for n, (s, base) in enumerate(plan):
        kind = series[base][0]
        serial = f"{PREFIX}-{n:06d}"
        public_key, address = demo_device_identity(serial)
        rows.append(
            Meter(serial=serial, member=members[s], connection_point=cps[s],
                  asset_kind=kinds[kind], capacity_w=30_000, public_key=public_key,
                  address=address, active_from=horizon_start - timedelta(days=1),
                  firmware_version="scale-1.0")
        )  # fmt: skip
    created = Meter.objects.bulk_create(rows, batch_size=2000)
    Tariff.objects.get_or_create(
        name=f"{PREFIX} tariff",
        defaults={"valid_from": horizon_start - timedelta(days=1),
                  "retail_price": Decimal("0.32"), "feed_in_price": Decimal("0.08")},
    )  # fmt: skip
    from apps.incentives import conf as incentives_conf
    from apps.incentives.models import EmissionFactor

    for basis, grams in (("location", Decimal("380")), ("residual_mix", Decimal("520"))):
        EmissionFactor.objects.get_or_create(
            market_zone=incentives_conf.market_zone(), basis=basis,
            valid_from=horizon_start.date() - timedelta(days=1),
            defaults={"g_co2e_per_kwh": grams, "source": "bench (synthetic)"},
        )  # fmt: skip
    return Cooperative(
        meters=[
            SyntheticMeter(m.pk, m.serial, members[s].pk, s, base, series[base][0])
            for m, (s, base) in zip(created, plan, strict=True)
        ],
        member_ids=[m.pk for m in members],
        transformer_ids=[t.pk for t in transformers],
        horizon_start=horizon_start,
        end=end,
        base_series=series,
    )


def meter_series(coop: Cooperative, meter: SyntheticMeter) -> tuple[np.ndarray, np.ndarray]:
    """(import_wh, export_wh) per interval of the whole horizon for one synthetic meter."""
    kind, imp, exp = coop.base_series[meter.base]
    site_rng = np.random.default_rng([20_261_203, meter.site])
    scale = site_rng.lognormal(0.0, 0.3 if kind != "pv" else 0.15)
    shift = int(site_rng.integers(-4, 5)) if kind != "pv" else 0
    rng = np.random.default_rng([20_261_203, meter.site, meter.base])
    noise = rng.lognormal(0.0, 0.12, size=len(imp))
    out = []
    for values in (imp, exp):
        v = np.roll(values, shift) * scale * noise
        out.append(np.clip(np.rint(v), 0, 7_500).astype(np.int64))
    return out[0], out[1]


def reading_rows(coop: Cooperative, start: datetime, end: datetime) -> Iterator[tuple]:
    """COPY rows of every meter for [start, end) (a window of the horizon) in the order ingest
    writes them: one interval of every meter, then the next (so the heap is in time order, as in
    production). Computed a day at a time: memory holds one day of every meter (~30 MB at
    10,000 meters)."""
    first = int((start - coop.horizon_start).total_seconds()) // STEP
    last = int((end - coop.horizon_start).total_seconds()) // STEP
    per_day = DAY // STEP
    ids = [m.meter_id for m in coop.meters]
    for chunk in range(first, last, per_day):
        upto = min(chunk + per_day, last)
        n = upto - chunk
        shape = (len(coop.meters), n)
        imp_m, exp_m = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        reg_i, reg_e = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        est_m = np.zeros(shape, bool)
        for row, meter in enumerate(coop.meters):
            imp, exp = meter_series(coop, meter)
            imp_m[row], exp_m[row] = imp[chunk:upto], exp[chunk:upto]
            reg_i[row] = (np.cumsum(imp) + 1_000_000)[chunk:upto]
            reg_e[row] = (np.cumsum(exp) + 1_000_000)[chunk:upto]
            est_m[row] = (
                np.random.default_rng([7, meter.meter_id, chunk]).random(n) < ESTIMATE_SHARE
            )
        for k in range(n):
            t = coop.horizon_start + timedelta(seconds=STEP * (chunk + k))
            ingested = t + timedelta(seconds=STEP + 20)
            seq = int(t.timestamp()) // STEP
            columns = zip(ids, imp_m[:, k].tolist(), exp_m[:, k].tolist(), reg_i[:, k].tolist(),
                          reg_e[:, k].tolist(), est_m[:, k].tolist(), strict=True)  # fmt: skip
            for mid, i, e, ri, re_, estimated in columns:
                if estimated:
                    yield (mid, t, 1, True, STEP, i, e, ri, re_, 0, None, None, 9, 0, "estimate",
                           "gap estimate", None, ingested)  # fmt: skip
                else:
                    yield (mid, t, 1, True, STEP, i, e, ri, re_, 0, seq, None, 0, 0, "mqtt", "",
                           None, ingested)  # fmt: skip


def readings_copy(coop: Cooperative, start: datetime, end: datetime) -> int:
    """COPY the readings of [start, end) into the reading partitions (created first through the
    partition service); return the rows written."""
    import psycopg
    from django.db import connection

    from apps.meters.readings.partitions import partitions_ensure

    partitions_ensure(start=start, end=end - timedelta(seconds=1))
    connection.ensure_connection()
    count = 0
    with psycopg.Cursor(connection.connection) as cursor, cursor.copy(_COPY) as copy:
        copy.set_types(_COPY_TYPES)
        for row in reading_rows(coop, start, end):
            copy.write_row(row)
            count += 1
    return count


def rollups_build(start: datetime, end: datetime, *, hours_per_call: int = 24) -> int:
    """Hourly/daily rollups of [start, end) through the meters' rollup service (mark the hours
    dirty, refresh a day at a time); return the hours refreshed. The incremental path, for small
    windows; bulk-loaded history is rolled up by `rollups_build_bulk`."""
    from apps.meters.readings.rollups import rollups_mark_dirty, rollups_refresh

    hours = []
    t = start.replace(minute=0, second=0, microsecond=0)
    while t < end:
        hours.append(t)
        t += timedelta(hours=1)
    rollups_mark_dirty(meter_ids=(), hours=hours)  # a fresh database: no cached pages yet
    done = 0
    while refreshed := rollups_refresh(limit=hours_per_call):
        done += refreshed
    return done


# The rollups `rollups_refresh` would produce for the hours [h_lo, h_hi) and the whole UTC days
# [d_lo, d_hi) around them, with range predicates instead of hour lists: one INSERT ... SELECT
# ... GROUP BY per level, each scanning one day of one partition through the time index.
_BULK = (
    "DELETE FROM meters_meterrollup WHERE granularity = 'hour' "
    "AND period_start >= %(h_lo)s AND period_start < %(h_hi)s",
    """INSERT INTO meters_meterrollup
    (meter_id, granularity, period_start, import_wh, export_wh, intervals, estimated_intervals)
SELECT meter_id, 'hour', date_trunc('hour', interval_start), sum(import_wh), sum(export_wh),
       count(*), count(*) FILTER (WHERE quality IN (8, 9))
  FROM meters_reading
 WHERE is_current AND interval_start >= %(h_lo)s AND interval_start < %(h_hi)s
 GROUP BY 1, 3""",
    "DELETE FROM meters_meterrollup WHERE granularity = 'day' "
    "AND period_start >= %(d_lo)s AND period_start < %(d_hi)s",
    """INSERT INTO meters_meterrollup
    (meter_id, granularity, period_start, import_wh, export_wh, intervals, estimated_intervals)
SELECT meter_id, 'day', date_trunc('day', period_start, 'UTC'), sum(import_wh), sum(export_wh),
       sum(intervals), sum(estimated_intervals)
  FROM meters_meterrollup
 WHERE granularity = 'hour' AND period_start >= %(d_lo)s AND period_start < %(d_hi)s
 GROUP BY 1, 3""",
    "DELETE FROM meters_gridrollup WHERE (granularity = 'hour' "
    "AND period_start >= %(h_lo)s AND period_start < %(h_hi)s) OR (granularity = 'day' "
    "AND period_start >= %(d_lo)s AND period_start < %(d_hi)s)",
    """INSERT INTO meters_gridrollup
    (level, node_id, granularity, period_start, import_wh, export_wh, meters)
SELECT lvl.level, lvl.node_id, r.granularity, r.period_start,
       sum(r.import_wh), sum(r.export_wh), count(DISTINCT r.meter_id)
  FROM meters_meterrollup r
  JOIN meters_meter m ON m.id = r.meter_id
  JOIN grid_connectionpoint cp ON cp.id = m.connection_point_id
  JOIN grid_transformer t ON t.id = cp.transformer_id
 CROSS JOIN LATERAL (VALUES ('transformer', t.id), ('feeder', t.feeder_id)) AS lvl(level, node_id)
 WHERE (r.granularity = 'hour' AND r.period_start >= %(h_lo)s AND r.period_start < %(h_hi)s)
    OR (r.granularity = 'day' AND r.period_start >= %(d_lo)s AND r.period_start < %(d_hi)s)
 GROUP BY 1, 2, 3, 4""",
)


def rollups_build_bulk(start: datetime, end: datetime) -> int:
    """Hourly/daily meter and grid rollups of bulk-loaded readings in [start, end), set-based:
    a day at a time (its own transaction), every hour and day touched recomputed whole (readings
    loaded earlier next to the window count too), as `rollups_refresh` would. Return the days."""
    from django.db import connection, transaction

    from apps.meters.readings.partitions import partitions_ensure

    partitions_ensure(start=start, end=end, tables=["meters_meterrollup"])
    h_start = start.replace(minute=0, second=0, microsecond=0)
    h_end = end.replace(minute=0, second=0, microsecond=0)
    if h_end < end:
        h_end += timedelta(hours=1)
    day = h_start.replace(hour=0)
    days = 0
    while day < h_end:
        params = {
            "h_lo": max(day, h_start), "h_hi": min(day + timedelta(days=1), h_end),
            "d_lo": day, "d_hi": day + timedelta(days=1),
        }  # fmt: skip
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in _BULK:
                cursor.execute(statement, params)
        day += timedelta(days=1)
        days += 1
    return days


def rollups_differences(hours: list[datetime]) -> int:
    """Rows in which the stored rollups of `hours` (and their days) differ from what
    `rollups_refresh` computes for them now; the refresh's result is kept (0 = same rollups)."""
    from django.db import connection

    from apps.meters.readings.rollups import rollups_mark_dirty, rollups_refresh

    hours = sorted({h.replace(minute=0, second=0, microsecond=0) for h in hours})
    days = sorted({h.replace(hour=0) for h in hours})
    where = (
        " WHERE (granularity = 'hour' AND period_start = ANY(%(hours)s::timestamptz[])) "
        "OR (granularity = 'day' AND period_start = ANY(%(days)s::timestamptz[]))"
    )
    queries = {
        "meter": "SELECT meter_id, granularity, period_start, import_wh, export_wh, "  # noqa: S608
        "intervals, estimated_intervals FROM meters_meterrollup" + where,
        "grid": "SELECT level, node_id, granularity, period_start, import_wh, "  # noqa: S608
        "export_wh, meters FROM meters_gridrollup" + where,
    }
    params = {"hours": hours, "days": days}
    with connection.cursor() as cursor:
        before = {}
        for name, sql in queries.items():
            cursor.execute(sql, params)
            before[name] = set(cursor.fetchall())
        rollups_mark_dirty(meter_ids=(), hours=hours)  # same readings: no page to invalidate
        while rollups_refresh(limit=len(hours)):
            pass
        differences = 0
        for name, sql in queries.items():
            cursor.execute(sql, params)
            differences += len(before[name] ^ set(cursor.fetchall()))
    return differences
