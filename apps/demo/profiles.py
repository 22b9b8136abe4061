"""The demo cooperative's households and their energy, from SimBench ``1-LV-rural3--2-sw``.

Pure module (numpy + the standard library, no Django). The grid and its 2016 15-minute profiles
were extracted once from the installed ``simbench`` package into ``data/`` (see
``simbench_extract.py``; re-extracted automatically if the files are missing).

Public API (used by the demo loader, the meter simulator and forecasting)::

    community(seed=DEMO_SEED) -> Community        # households, topology, shared PV and wind plants
    asset_energy_wh(spec, kind, start, end) -> np.ndarray[int64]
        # kind: "load" (alias "household"), "pv" (alias "shared_pv"), "battery", "ev",
        # "heat_pump", "wind" (alias "shared_wind"); one value per 15-minute UTC interval in
        # [start, end) (start floored to the interval). load/pv/ev/heat_pump/wind >= 0; battery
        # is signed: + charging (drawn from the grid side), - discharging.
    meter_energy_wh(spec, asset_kind, start, end) -> (import_wh, export_wh)
        # the same, as the two registers of the meter of that asset kind (Meter.AssetKind).
    site_energy_wh(spec, start, end) -> (import_wh, export_wh)   # summed over the site's meters
    local_day_bounds(day, tz) -> (start_utc, end_utc)   # 92/96/100 intervals
    meter_serial(spec, kind) -> str; spec_for_serial(serial) -> (spec, kind) | None
        # the demo meters' serials ("DEMO-030-PV", "DEMO-SHARED-PV", "DEMO-SHARED-WIND") and back

How the 2016 profile year maps onto any date: a local calendar day uses the 2016 day of the same
weekday nearest to the same day of year (so weekends stay weekends). Behavioural profiles (H0,
commercial, EV, heat pump) are read at the local wall-clock quarter hour, so on DST days the
skipped hour is skipped and the repeated hour repeats; PV and wind follow the weather, so they
are read in standard time (UTC+1, no DST). SimBench's profiles themselves have no DST (366 x 96
values).

Variety: each household blends the five SimBench H0 variants with its own weights, is scaled to
its own annual consumption (1.5-6 MWh), shifted by -45..+45 minutes, and multiplied by seeded
log-normal noise keyed on (seed, household, asset, UTC interval) — deterministic for any range,
whichever way it is queried.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from apps.demo.simbench_extract import DATA_DIR, GRID_FILE, INTERVALS_2016, PROFILES_FILE

DEMO_SEED = 20160101
DEFAULT_TZ = "Europe/Berlin"
STEP_SECONDS = 900
SLOTS_PER_DAY = 96
_STANDARD_TIME_OFFSET = 3600  # CET, for PV
_DAY_2016 = date(2016, 1, 1)
_H0 = ("H0-A", "H0-B", "H0-C", "H0-G", "H0-L")
ASSET_KINDS = ("load", "pv", "battery", "ev", "heat_pump", "wind")
_ALIASES = {"household": "load", "shared_pv": "pv", "shared_wind": "wind"}
_KIND_STREAM = {"load": 1, "pv": 2, "battery": 3, "ev": 4, "heat_pump": 5}

# Split of the single 400 kVA station into secondary substations (see docs/demo.md).
TRANSFORMER_AREAS = 4
FEEDERS = 2
SHARED_PV_KWP = 60.0
# The cooperative's share of a regional wind turbine (docs/demo.md, "The co-owned wind plant"):
# a quarter of SimBench's 2 MW turbine MV1.101 SGen 1, on the MV grid the village hangs from.
SHARED_WIND_KW = 500.0
PRODUCER_RATIO = 4.0
CONTRACTED_POWER_W = 30_000  # a German 3 x 63 A house connection is contracted at ~30 kW
_STREETS = (
    "Dorfstraße",
    "Lindenweg",
    "Am Mühlenteich",
    "Schulstraße",
    "Birkenallee",
    "Feldweg",
    "Kirchplatz",
    "Wiesengrund",
    "Am Sportplatz",
)


@dataclass(frozen=True, slots=True)
class HouseholdSpec:
    """One member site (household or small business) or a shared plant; all energy in Wh."""

    number: int  # 1..N, stable: member001 ... (0 for the shared plants)
    kind: str  # "household" | "business" | "plant"
    bus: str  # bus name in the SimBench model
    transformer: str  # name of the (split) transformer area
    load_profile: str  # SimBench profile the household is based on ("H0-A", "G1-C", ...)
    load_mix: tuple[tuple[str, float], ...]  # blended profiles and weights (sum 1)
    annual_kwh: float  # target annual consumption of the base load (without EV, heat pump)
    shift_minutes: int  # -45..45, multiple of 15: behaviour later (+) or earlier (-)
    noise: float  # sigma of the per-interval log-normal noise on the load
    pv_kwp: float = 0.0
    pv_profile: str | None = None
    pv_factor: float = 1.0  # orientation/shading of this roof (yield relative to the profile)
    battery_kwh: float = 0.0
    battery_kw: float = 0.0
    battery_efficiency: float = 0.95  # round trip
    ev: tuple[tuple[str, float], ...] = ()  # (SimBench charging profile, kW) per charge point
    heat_pump: tuple[tuple[str, float], ...] = ()  # (SimBench heat-pump profile, kW)
    asset_scale: float = 1.0  # EV / heat-pump usage relative to the SimBench element
    street: str = ""
    house_number: int = 0
    lon: float | None = None
    lat: float | None = None
    distance_km: float = 0.0  # cable distance from the station's LV busbar
    seed: int = DEMO_SEED
    wind_kw: float = 0.0  # rated power of a wind plant (share of a turbine)
    wind_profile: str | None = None

    @property
    def key(self) -> str:
        if self.kind == "plant":
            return "shared-wind" if self.has_wind else "shared-pv"
        return f"member{self.number:03d}"

    @property
    def has_wind(self) -> bool:
        return self.wind_kw > 0

    @property
    def has_pv(self) -> bool:
        return self.pv_kwp > 0

    @property
    def has_battery(self) -> bool:
        return self.battery_kwh > 0

    @property
    def has_ev(self) -> bool:
        return bool(self.ev)

    @property
    def has_heat_pump(self) -> bool:
        return bool(self.heat_pump)

    @property
    def ev_kw(self) -> float:
        return sum(kw for _, kw in self.ev)

    @property
    def heat_pump_kw(self) -> float:
        return sum(kw for _, kw in self.heat_pump)

    @property
    def assets(self) -> tuple[str, ...]:
        """Asset kinds present at this site, in meter order."""
        if self.kind == "plant":
            return ("wind",) if self.has_wind else ("pv",)
        present = ["load"]
        present += ["pv"] if self.has_pv else []
        present += ["battery"] if self.has_battery else []
        present += ["ev"] if self.has_ev else []
        present += ["heat_pump"] if self.has_heat_pump else []
        return tuple(present)

    @property
    def annual_pv_kwh(self) -> float:
        if not self.has_pv:
            return 0.0
        return self.pv_kwp * self.pv_factor * _annual_sum(self.pv_profile) * 0.25

    @property
    def annual_consumption_kwh(self) -> float:
        ev = sum(kw * _annual_sum(p) * 0.25 for p, kw in self.ev) * self.asset_scale
        hp = sum(kw * _annual_sum(p) * 0.25 for p, kw in self.heat_pump) * self.asset_scale
        return self.annual_kwh + ev + hp

    @property
    def member_kind(self) -> str:
        """accounts.Member.Kind: consumer (no PV), prosumer, or producer — a site generating at
        least four times what it uses is run for its generation (a barn roof, a farm)."""
        if not self.has_pv:
            return "consumer"
        if self.annual_pv_kwh >= PRODUCER_RATIO * self.annual_consumption_kwh:
            return "producer"
        return "prosumer"

    def capacity_w(self, kind: str) -> int:
        """Physical capacity (W) of an asset's meter; interval energy never exceeds it x 15 min."""
        kind = _ALIASES.get(kind, kind)
        if kind == "load":
            return CONTRACTED_POWER_W
        if kind == "pv":
            return math.ceil(self.pv_kwp * 1000)
        if kind == "battery":
            return math.ceil(self.battery_kw * 1000)
        if kind == "ev":
            return math.ceil(self.ev_kw * self.asset_scale * 1000)
        if kind == "heat_pump":
            return math.ceil(self.heat_pump_kw * self.asset_scale * 1000)
        if kind == "wind":
            return math.ceil(self.wind_kw * 1000)
        raise ValueError(f"unknown asset kind {kind!r}")


@dataclass(frozen=True, slots=True)
class TransformerSpec:
    name: str
    feeder: str
    capacity_kva: int
    vk_percent: float
    vkr_percent: float
    std_type: str
    branches: tuple[int, ...]  # indexes of the original LV branches it supplies
    buses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FeederSpec:
    name: str
    capacity_kw: int


@dataclass(frozen=True, slots=True)
class SubstationSpec:
    name: str
    voltage_kv: float
    capacity_kva: int
    lon: float | None
    lat: float | None


@dataclass(frozen=True)
class Community:
    households: list[HouseholdSpec]
    shared_pv: HouseholdSpec
    shared_wind: HouseholdSpec  # outside the village: no bus, no transformer area
    substation: SubstationSpec
    feeders: list[FeederSpec]
    transformers: list[TransformerSpec]
    showcase_number: int  # a prosumer with PV and battery (the member@ demo login)
    source: str
    seed: int
    timezone: str = DEFAULT_TZ
    original_transformer: dict = field(default_factory=dict)

    def household(self, number: int) -> HouseholdSpec:
        return self.households[number - 1]


# --- Data -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def grid_data() -> dict:
    path = DATA_DIR / GRID_FILE
    if not path.exists() or not (DATA_DIR / PROFILES_FILE).exists():
        from apps.demo.simbench_extract import extract

        extract(DATA_DIR)
    return json.loads(path.read_text())


@lru_cache(maxsize=1)
def _profile_table() -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    grid_data()  # extracts the files if they are missing
    with np.load(DATA_DIR / PROFILES_FILE) as data:
        names = [str(n) for n in data["names"]]
        return {n: i for i, n in enumerate(names)}, data["scales"], data["q"]


@lru_cache(maxsize=64)
def profile(name: str) -> np.ndarray:
    """A SimBench 2016 profile (35136 quarter hours, local time), as a read-only float array."""
    index, scales, q = _profile_table()
    if name not in index:
        raise KeyError(f"unknown profile {name!r}; known: {sorted(index)}")
    column = q[:, index[name]].astype(np.float64) * (scales[index[name]] / 65535.0)
    column.setflags(write=False)
    return column


@lru_cache(maxsize=64)
def _annual_sum(name: str | None) -> float:
    return float(profile(name).sum()) if name else 0.0


@lru_cache(maxsize=256)
def _mix_fraction(mix: tuple[tuple[str, float], ...]) -> np.ndarray:
    """Blend of profiles normalised to sum 1 over 2016 (share of annual energy per interval)."""
    blended = sum(w * profile(p) / _annual_sum(p) for p, w in mix)
    blended = np.asarray(blended, dtype=np.float64)
    blended /= blended.sum()
    blended.setflags(write=False)
    return blended


# --- Time mapping -----------------------------------------------------------------------------


def _ensure_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: all datetimes must be timezone-aware")
    return value.astimezone(UTC)


def profile_day(day: date) -> int:
    """Index (0..365) of the 2016 day with the same weekday nearest to `day`'s day of year."""
    try:
        ref = day.replace(year=2016)
    except ValueError:  # pragma: no cover - 2016 is a leap year, every day exists
        ref = date(2016, 2, 28)
    delta = (day.weekday() - ref.weekday() + 3) % 7 - 3  # -3..3
    candidate = ref + timedelta(days=delta)
    if candidate.year < 2016:
        candidate += timedelta(days=7)
    elif candidate.year > 2016:
        candidate -= timedelta(days=7)
    return (candidate - _DAY_2016).days


def interval_starts(start: datetime, end: datetime) -> np.ndarray:
    """Unix seconds of the 15-minute interval starts in [start, end) (start floored)."""
    first = int(_ensure_utc(start).timestamp()) // STEP_SECONDS * STEP_SECONDS
    last = int(_ensure_utc(end).timestamp())
    return np.arange(first, last, STEP_SECONDS, dtype=np.int64)


def local_day_bounds(day: date, tz: str = DEFAULT_TZ) -> tuple[datetime, datetime]:
    """UTC [start, end) of a local calendar day: 92, 96 or 100 quarter hours."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


@lru_cache(maxsize=64)
def _profile_index(first: int, count: int, tz: str | None) -> np.ndarray:
    """2016 profile index for each interval: local wall clock in `tz`, or CET if tz is None."""
    starts = first + STEP_SECONDS * np.arange(count, dtype=np.int64)
    if tz is None:
        local = starts + _STANDARD_TIME_OFFSET
        days = local // 86400
        slots = (local % 86400) // STEP_SECONDS
        epoch_day = date(1970, 1, 1)
        day_index = {d: profile_day(epoch_day + timedelta(days=d)) for d in set(days.tolist())}
        mapped = np.array([day_index[int(d)] for d in days], dtype=np.int64)
    else:
        zone = ZoneInfo(tz)
        mapped = np.empty(count, dtype=np.int64)
        slots = np.empty(count, dtype=np.int64)
        cache: dict[date, int] = {}
        # The UTC offset only changes on the hour: convert once per UTC hour.
        for i in range(count):
            if i == 0 or starts[i] % 3600 == 0:
                local = datetime.fromtimestamp(int(starts[i]), tz=zone)
                offset = int(local.utcoffset().total_seconds())
            wall = int(starts[i]) + offset
            d = date(1970, 1, 1) + timedelta(days=wall // 86400)
            if d not in cache:
                cache[d] = profile_day(d)
            mapped[i] = cache[d]
            slots[i] = (wall % 86400) // STEP_SECONDS
    index = mapped * SLOTS_PER_DAY + slots
    index.setflags(write=False)
    return index


# --- Deterministic noise ----------------------------------------------------------------------

_M64 = (1 << 64) - 1


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniform(seed: int, number: int, stream: int, starts: np.ndarray) -> np.ndarray:
    """Uniform (0, 1] per interval, a pure function of (seed, site, stream, interval)."""
    key = (seed * 1_000_003 + number * 1_009 + stream * 7_919) & _M64
    x = (starts // STEP_SECONDS).astype(np.uint64) + np.uint64(0)
    x = _splitmix(x ^ _splitmix(np.array([key], dtype=np.uint64)))
    return ((x >> np.uint64(11)).astype(np.float64) + 1.0) / float(1 << 53)


def _lognormal_factor(spec: HouseholdSpec, stream: int, sigma: float, starts: np.ndarray):
    if sigma <= 0:
        return np.ones(len(starts))
    u1 = _uniform(spec.seed, spec.number, 2 * stream, starts)
    u2 = _uniform(spec.seed, spec.number, 2 * stream + 1, starts)
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)
    return np.exp(sigma * z - sigma * sigma / 2.0)  # mean 1


# --- Energy -----------------------------------------------------------------------------------


def _shifted(index: np.ndarray, shift_minutes: int) -> np.ndarray:
    return (index - shift_minutes // 15) % INTERVALS_2016


def _load_wh(spec: HouseholdSpec, starts: np.ndarray, tz: str) -> np.ndarray:
    if spec.kind == "plant":
        return np.zeros(len(starts))
    idx = _shifted(_profile_index(int(starts[0]), len(starts), tz), spec.shift_minutes)
    base = spec.annual_kwh * 1000.0 * _mix_fraction(spec.load_mix)[idx]
    return base * _lognormal_factor(spec, _KIND_STREAM["load"], spec.noise, starts)


def _pv_wh(spec: HouseholdSpec, starts: np.ndarray) -> np.ndarray:
    if not spec.has_pv:
        return np.zeros(len(starts))
    idx = _profile_index(int(starts[0]), len(starts), None)
    kw = spec.pv_kwp * spec.pv_factor * profile(spec.pv_profile)[idx]
    return kw * 250.0 * _lognormal_factor(spec, _KIND_STREAM["pv"], 0.05, starts)


def _wind_wh(spec: HouseholdSpec, starts: np.ndarray) -> np.ndarray:
    """The turbine's own 2016 output (no noise: it is the plant's real profile), standard time."""
    if not spec.has_wind:
        return np.zeros(len(starts))
    idx = _profile_index(int(starts[0]), len(starts), None)
    return spec.wind_kw * profile(spec.wind_profile)[idx] * 250.0


def _profiles_wh(spec, items, stream: int, sigma: float, starts: np.ndarray, tz: str):
    if not items:
        return np.zeros(len(starts))
    idx = _shifted(_profile_index(int(starts[0]), len(starts), tz), spec.shift_minutes)
    kw = sum(rated * profile(name)[idx] for name, rated in items) * spec.asset_scale
    return kw * 250.0 * _lognormal_factor(spec, stream, sigma, starts)


def _battery_wh(spec: HouseholdSpec, starts: np.ndarray, tz: str) -> np.ndarray:
    """Self-consumption battery: charges from PV surplus, discharges into the site's deficit.

    The state of charge of an interval depends only on the interval: every 24-hour segment from
    06:00 UTC (after the night's discharge) starts from a state simulated over the previous
    segment from empty, so any query range gives the same values.
    """
    if not spec.has_battery:
        return np.zeros(len(starts))
    day = 86400
    anchor = 6 * 3600
    seg_first = (int(starts[0]) - anchor) // day * day + anchor
    seg_last = (int(starts[-1]) - anchor) // day * day + anchor
    sim_first = seg_first - day
    sim = np.arange(sim_first, seg_last + day, STEP_SECONDS, dtype=np.int64)
    surplus = _pv_wh(spec, sim) - (
        _load_wh(spec, sim, tz)
        + _profiles_wh(spec, spec.ev, _KIND_STREAM["ev"], 0.0, sim, tz)
        + _profiles_wh(spec, spec.heat_pump, _KIND_STREAM["heat_pump"], 0.1, sim, tz)
    )
    eta = math.sqrt(spec.battery_efficiency)
    capacity = spec.battery_kwh * 1000.0
    floor = 0.1 * capacity
    step_max = spec.battery_kw * 250.0
    per_segment = day // STEP_SECONDS
    out = np.zeros(len(sim))
    surplus_list = surplus.tolist()
    for seg in range(1, len(sim) // per_segment):
        soc = floor
        for i in range((seg - 1) * per_segment, (seg + 1) * per_segment):
            s = surplus_list[i]
            if s > 0:  # charge: energy taken at the terminals
                flow = min(s, step_max, (capacity - soc) / eta)
                soc += flow * eta
            else:  # discharge: energy delivered at the terminals
                flow = -min(-s, step_max, (soc - floor) * eta)
                soc += flow / eta
            if i >= seg * per_segment:
                out[i] = flow
    offset = (int(starts[0]) - sim_first) // STEP_SECONDS
    return out[offset : offset + len(starts)]


def asset_energy_wh(
    spec: HouseholdSpec, kind: str, start: datetime, end: datetime, *, tz: str = DEFAULT_TZ
) -> np.ndarray:
    """Energy (integer Wh) per 15-minute UTC interval of [start, end) for one asset of a site.

    `kind`: load (household), pv (shared_pv), battery (signed: + charge, - discharge), ev,
    heat_pump, wind (shared_wind). An asset the site does not have gives zeros.
    """
    kind = _ALIASES.get(kind, kind)
    starts = interval_starts(start, end)
    if len(starts) == 0:
        return np.zeros(0, dtype=np.int64)
    if kind == "load":
        values = _load_wh(spec, starts, tz)
    elif kind == "pv":
        values = _pv_wh(spec, starts)
    elif kind == "ev":
        values = _profiles_wh(spec, spec.ev, _KIND_STREAM["ev"], 0.0, starts, tz)
    elif kind == "heat_pump":
        values = _profiles_wh(spec, spec.heat_pump, _KIND_STREAM["heat_pump"], 0.1, starts, tz)
    elif kind == "battery":
        values = _battery_wh(spec, starts, tz)
    elif kind == "wind":
        values = _wind_wh(spec, starts)
    else:
        raise ValueError(f"unknown asset kind {kind!r}; expected one of {ASSET_KINDS}")
    limit = spec.capacity_w(kind) * STEP_SECONDS // 3600  # Wh per interval at full power
    return np.clip(np.rint(values), -limit, limit).astype(np.int64)


def meter_energy_wh(
    spec: HouseholdSpec, asset_kind: str, start: datetime, end: datetime, *, tz: str = DEFAULT_TZ
) -> tuple[np.ndarray, np.ndarray]:
    """(import_wh, export_wh) per interval for the meter of `asset_kind` (Meter.AssetKind)."""
    values = asset_energy_wh(spec, asset_kind, start, end, tz=tz)
    kind = _ALIASES.get(asset_kind, asset_kind)
    zeros = np.zeros_like(values)
    if kind in ("pv", "wind"):
        return zeros, values
    if kind == "battery":
        return np.maximum(values, 0), np.maximum(-values, 0)
    return values, zeros


def site_energy_wh(
    spec: HouseholdSpec, start: datetime, end: datetime, *, tz: str = DEFAULT_TZ
) -> tuple[np.ndarray, np.ndarray]:
    """(import_wh, export_wh) per interval summed over every meter of a site."""
    imports = np.zeros(len(interval_starts(start, end)), dtype=np.int64)
    exports = imports.copy()
    for kind in spec.assets:
        imp, exp = meter_energy_wh(spec, kind, start, end, tz=tz)
        imports += imp
        exports += exp
    return imports, exports


# --- Meter serials ----------------------------------------------------------------------------

SHARED_PV_SERIAL = "DEMO-SHARED-PV"
SHARED_WIND_SERIAL = "DEMO-SHARED-WIND"
# asset kind -> serial suffix of its meter (Meter.AssetKind in comments)
SERIAL_SUFFIX = {"load": "H", "pv": "PV", "battery": "BAT", "ev": "EV", "heat_pump": "HP"}


def meter_serial(spec: HouseholdSpec, kind: str) -> str:
    """Serial of the demo meter measuring `kind` at a site: DEMO-<number>-<H|PV|BAT|EV|HP>."""
    if spec.kind == "plant":
        return SHARED_WIND_SERIAL if spec.has_wind else SHARED_PV_SERIAL
    return f"DEMO-{spec.number:03d}-{SERIAL_SUFFIX[_ALIASES.get(kind, kind)]}"


def spec_for_serial(serial: str, seed: int = DEMO_SEED) -> tuple[HouseholdSpec, str] | None:
    """(site spec, asset kind) behind a demo meter serial; None if it is not a demo meter."""
    c = community(seed)
    if serial == SHARED_PV_SERIAL:
        return c.shared_pv, "pv"
    if serial == SHARED_WIND_SERIAL:
        return c.shared_wind, "wind"
    parts = serial.split("-")
    kinds = {suffix: kind for kind, suffix in SERIAL_SUFFIX.items()}
    if len(parts) != 3 or parts[0] != "DEMO" or not parts[1].isdigit() or parts[2] not in kinds:
        return None
    number = int(parts[1])
    if not 1 <= number <= len(c.households):
        return None
    spec, kind = c.household(number), kinds[parts[2]]
    return (spec, kind) if kind in spec.assets else None


# --- The community ----------------------------------------------------------------------------


def _natural(name: str) -> tuple[str, int]:
    head, _, tail = name.rpartition(" ")
    return (head, int(tail)) if tail.isdigit() else (name, 0)


def _split_areas(grid: dict, site_count: dict[str, int]) -> list[list[int]]:
    """Group the LV branches into TRANSFORMER_AREAS areas with balanced member counts."""
    branches = grid["branches"]
    counts = [sum(site_count.get(b, 0) for b in branch) for branch in branches]
    areas: list[list[int]] = [[] for _ in range(TRANSFORMER_AREAS)]
    totals = [0] * TRANSFORMER_AREAS
    for i in sorted(range(len(branches)), key=lambda i: (-counts[i], i)):
        target = min(range(TRANSFORMER_AREAS), key=lambda a: (totals[a], a))
        areas[target].append(i)
        totals[target] += counts[i]
    return [sorted(a) for a in areas]


@lru_cache(maxsize=4)
def community(seed: int = DEMO_SEED) -> Community:
    """The demo community, deterministic for a seed (cached)."""
    grid = grid_data()
    rng = np.random.default_rng(seed)
    buses = grid["buses"]
    by_bus: dict[str, list[dict]] = defaultdict(list)
    for load in grid["loads"]:
        by_bus[load["bus"]].append(load)
    sgens = defaultdict(list)
    for sgen in grid["sgens"]:
        sgens[sgen["bus"]].append(sgen)
    storages = {s["bus"]: s for s in grid["storages"]}

    site_buses = sorted(by_bus, key=_natural)
    areas = _split_areas(grid, dict.fromkeys(site_buses, 1))
    branch_of = {bus: i for i, branch in enumerate(grid["branches"]) for bus in branch}
    area_of_branch = {b: a for a, branches in enumerate(areas) for b in branches}

    # Order the members along the streets: by branch, then distance from the station.
    site_buses.sort(key=lambda b: (branch_of[b], buses[b]["distance_km"], _natural(b)))
    house_numbers: dict[int, int] = defaultdict(int)

    households = []
    business_shifts: set[tuple[str, int]] = set()
    for number, bus in enumerate(site_buses, start=1):
        loads = by_bus[bus]
        base = next(x for x in loads if x["profile"].startswith(("H0", "G")))
        is_household = base["profile"].startswith("H0")
        if is_household:
            weights = rng.dirichlet(np.ones(len(_H0) - 1)) * (1 - (w0 := rng.uniform(0.55, 0.85)))
            others = [p for p in _H0 if p != base["profile"]]
            mix = ((base["profile"], round(float(w0), 4)),) + tuple(
                (p, round(float(w), 4)) for p, w in zip(others, weights, strict=True)
            )
            nominal = base["p_kw"] * _annual_sum(base["profile"]) * 0.25
            annual = float(np.clip(nominal * rng.lognormal(0.0, 0.3), 1500, 6000))
            if annual in (1500.0, 6000.0):  # keep the clipped ones distinct too
                annual += float(rng.uniform(0, 300)) * (1 if annual == 1500.0 else -1)
        else:
            mix = ((base["profile"], 1.0),)
            nominal = base["p_kw"] * _annual_sum(base["profile"]) * 0.25
            annual = float(nominal * rng.uniform(0.8, 1.2))
        shift = int(rng.integers(-3, 4)) * 15
        while not is_household and (base["profile"], shift) in business_shifts:
            shift = int(rng.integers(-3, 4)) * 15  # two shops of a kind keep different hours
        if not is_household:
            business_shifts.add((base["profile"], shift))
        noise = float(rng.uniform(0.15, 0.35) if is_household else rng.uniform(0.1, 0.2))
        ev = tuple(
            (x["profile"], x["p_kw"]) for x in loads if x["profile"].startswith(("HLS", "APLS"))
        )
        heat_pump = tuple(
            (x["profile"], x["p_kw"]) for x in loads if x["profile"].startswith(("Air", "Soil"))
        )
        pv_kwp, pv_profile = 0.0, None
        if sgens.get(bus):
            pv_kwp = sum(s["p_kw"] for s in sgens[bus])
            pv_profile = sgens[bus][0]["profile"]
        battery_kwh = battery_kw = 0.0
        efficiency = 0.95
        if bus in storages:
            storage = storages[bus]
            battery_kwh, battery_kw = storage["e_kwh"], storage["p_kw"]
            efficiency = storage["efficiency_percent"] or 0.95
            if pv_kwp == 0:
                # SimBench names each storage profile after the PV it pairs with
                # ("Storage_PV3_H0-G"); the PV itself is not in the model, so add it here,
                # sized at 1 kWp per kWh of storage (the usual home-battery rule of thumb).
                pv_profile = storage["profile"].split("_")[1]
                pv_kwp = battery_kwh
        branch = branch_of[bus]
        house_numbers[branch] += 1
        lon, lat = (buses[bus]["geo"] or (None, None))[:2]
        households.append(
            HouseholdSpec(
                number=number,
                kind="household" if is_household else "business",
                bus=bus,
                transformer=f"LV3.101 T{area_of_branch[branch] + 1}",
                load_profile=base["profile"],
                load_mix=mix,
                annual_kwh=round(annual, 1),
                shift_minutes=shift,
                noise=round(noise, 4),
                pv_kwp=round(pv_kwp, 2),
                pv_profile=pv_profile,
                pv_factor=round(float(rng.uniform(0.85, 1.05)), 4) if pv_kwp else 1.0,
                battery_kwh=battery_kwh,
                battery_kw=battery_kw,
                battery_efficiency=efficiency,
                ev=ev,
                heat_pump=heat_pump,
                asset_scale=round(float(rng.uniform(0.85, 1.15)), 4),
                street=_STREETS[branch % len(_STREETS)],
                house_number=house_numbers[branch] * 2 - 1 + int(rng.integers(0, 2)),
                lon=lon,
                lat=lat,
                distance_km=buses[bus]["distance_km"] or 0.0,
                seed=seed,
            )
        )

    substation, feeders, transformers = _topology(grid, areas, households)
    # The shared plant sits in the area with the most transformer headroom per member.
    shared_area = max(
        transformers,
        key=lambda t: t.capacity_kva / max(1, sum(h.transformer == t.name for h in households)),
    )
    lv_bus = grid["transformer"]["lv_bus"]
    shared = HouseholdSpec(
        number=0,
        kind="plant",
        bus=lv_bus,
        transformer=shared_area.name,
        load_profile="",
        load_mix=(),
        annual_kwh=0.0,
        shift_minutes=0,
        noise=0.0,
        pv_kwp=SHARED_PV_KWP,
        pv_profile="PV4",
        pv_factor=1.0,
        street="Am Sportplatz",
        house_number=1,
        lon=(buses[lv_bus]["geo"] or (None, None))[0],
        lat=(buses[lv_bus]["geo"] or (None, None))[1],
        seed=seed,
    )
    wind = grid["wind"]
    shared_wind = HouseholdSpec(
        number=0,
        kind="plant",
        bus=wind["node"],  # a bus of the MV grid, not of the village's LV grid
        transformer="",
        load_profile="",
        load_mix=(),
        annual_kwh=0.0,
        shift_minutes=0,
        noise=0.0,
        wind_kw=SHARED_WIND_KW,
        wind_profile=wind["profile"],
        seed=seed,
    )
    showcase = next(h.number for h in households if h.has_battery and h.member_kind == "prosumer")
    return Community(
        households=households,
        shared_pv=shared,
        shared_wind=shared_wind,
        substation=substation,
        feeders=feeders,
        transformers=transformers,
        showcase_number=showcase,
        source=grid["source"],
        seed=seed,
        original_transformer=grid["transformer"],
    )


def _topology(grid: dict, areas: list[list[int]], households: list[HouseholdSpec]):
    mv = grid["mv"]
    hv_geo = mv.get("hv_bus_geo") or (None, None)
    substation = SubstationSpec(
        name="MV1.101 HV/MV substation",
        voltage_kv=mv["vn_kv"],
        capacity_kva=sum(t["capacity_kva"] for t in mv["hv_mv_transformers"]),
        lon=hv_geo[0],
        lat=hv_geo[1],
    )
    feeders = [
        FeederSpec(name=f"MV1.101 Feeder {i + 1}", capacity_kw=mv["feeder_capacity_kw"])
        for i in range(FEEDERS)
    ]
    # Size each secondary substation like the original: the 400 kVA station carries the whole
    # grid's nominal load at a diversity factor; each area gets the smallest SimBench standard
    # type that carries its share of that (or its PV) with 20 % margin.
    types = grid["transformer_types"]
    total_nominal = sum(load["p_kw"] for load in grid["loads"])
    diversity = grid["transformer"]["capacity_kva"] / total_nominal
    transformers = []
    for a, branch_ids in enumerate(areas):
        name = f"LV3.101 T{a + 1}"
        members = [h for h in households if h.transformer == name]
        nominal = sum(
            load["p_kw"] for load in grid["loads"] if load["bus"] in {h.bus for h in members}
        )
        need = 1.2 * max(nominal * diversity, sum(h.pv_kwp for h in members))
        chosen = next((t for t in types if t["capacity_kva"] >= need), types[-1])
        transformers.append(
            TransformerSpec(
                name=name,
                feeder=feeders[a * FEEDERS // len(areas)].name,
                capacity_kva=chosen["capacity_kva"],
                vk_percent=chosen["vk_percent"],
                vkr_percent=chosen["vkr_percent"],
                std_type=chosen["name"],
                branches=tuple(branch_ids),
                buses=tuple(b for i in branch_ids for b in grid["branches"][i]),
            )
        )
    return substation, feeders, transformers
