"""Power flow of the cooperative's grid with pandapower, and the stability score (pure: no
Django).

The net: one MV slack bus (external grid, 1.0 pu) feeding every transformer's HV side; each
transformer's LV busbar; the LV cables between buses; one load per member site at its bus (a
site whose bus is unknown hangs off its transformer's busbar through a 50 m NAYY 4x150 cable).
Site power is net active power (import − export, W; negative = feeding in) at power factor 0.97.

Stability score (0–100, documented in docs/grid.md):
  loading factor  s_L = 1 at ≤ 80 % of the worst transformer/line loading, falling linearly to 0
                  at 120 %;
  voltage factor  s_V = 1 while every bus is within ±5 % of nominal, falling linearly to 0 at
                  ±10 % (the EN 50160 supply-voltage limit);
  score = 100 × min(s_L, s_V); a power flow that does not converge scores 0.
Alerts: transformer or line loading above 100 %, bus voltage outside [0.90, 1.10] pu.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

LOAD_OK, LOAD_ZERO = 80.0, 120.0
VOLT_OK, VOLT_ZERO = 0.05, 0.10
V_MIN, V_MAX = 0.90, 1.10
LOADING_LIMIT = 100.0
POWER_FACTOR = 0.97
DEFAULT_LINE = "NAYY 4x150 SE"


@dataclass(frozen=True)
class TrafoSpec:
    name: str
    sn_kva: float
    vk_percent: float = 6.0
    vkr_percent: float = 1.4
    hv_kv: float = 20.0
    lv_kv: float = 0.4
    lv_bus: str = ""


@dataclass(frozen=True)
class LineSpec:
    name: str
    from_bus: str
    to_bus: str
    length_km: float
    std_type: str = ""
    r_ohm_per_km: float | None = None
    x_ohm_per_km: float | None = None
    c_nf_per_km: float | None = None
    max_i_ka: float | None = None


@dataclass(frozen=True)
class SiteSpec:
    code: str
    transformer: str
    bus: str = ""


@dataclass
class GridModel:
    net: object
    site_load_index: dict[str, int]
    trafo_index: dict[str, int]


@dataclass
class StateResult:
    converged: bool
    score: float
    max_loading_percent: float
    min_vm_pu: float
    max_vm_pu: float
    transformers: dict[str, dict] = field(default_factory=dict)
    violations: list[dict] = field(default_factory=list)
    bus_voltages: dict[str, float] = field(default_factory=dict)


def _line_type_name(std_type: str, available: set[str]) -> str | None:
    """pandapower's name for a cable type, also for SimBench spellings such as
    "NAYY 4x150SE 0.6/1kV" (→ "NAYY 4x150 SE")."""
    if std_type in available:
        return std_type
    match = re.match(r"^\s*(\w+)\s+(\d+x\d+)\s*(SE|RE|RM)?", std_type)
    if match:
        kind, size, suffix = match.groups()
        for candidate in (f"{kind} {size} {suffix or 'SE'}", f"{kind} {size}"):
            if candidate in available:
                return candidate
    return None


def build_grid(trafos: list[TrafoSpec], lines: list[LineSpec], sites: list[SiteSpec]) -> GridModel:
    import pandapower as pp

    net = pp.create_empty_network()
    available = set(pp.available_std_types(net, "line").index)
    hv_kv = trafos[0].hv_kv if trafos else 20.0
    mv = pp.create_bus(net, vn_kv=hv_kv, name="MV slack")
    pp.create_ext_grid(net, mv, vm_pu=1.0, name="upstream grid")
    buses: dict[str, int] = {}

    def bus(name: str, vn_kv: float) -> int:
        if name not in buses:
            buses[name] = pp.create_bus(net, vn_kv=vn_kv, name=name)
        return buses[name]

    trafo_index = {}
    lv_of = {}
    for t in trafos:
        lv = bus(t.lv_bus or f"{t.name} LV", t.lv_kv)
        lv_of[t.name] = lv
        trafo_index[t.name] = pp.create_transformer_from_parameters(
            net,
            hv_bus=mv,
            lv_bus=lv,
            sn_mva=t.sn_kva / 1000,
            vn_hv_kv=t.hv_kv,
            vn_lv_kv=t.lv_kv,
            vkr_percent=t.vkr_percent,
            vk_percent=t.vk_percent,
            pfe_kw=0.0,
            i0_percent=0.0,
            name=t.name,
        )
    lv_kv = {t.name: t.lv_kv for t in trafos}
    default_kv = trafos[0].lv_kv if trafos else 0.4
    for ln in lines:
        a, b = bus(ln.from_bus, default_kv), bus(ln.to_bus, default_kv)
        std = _line_type_name(ln.std_type, available) if ln.std_type else None
        if ln.r_ohm_per_km is not None and ln.x_ohm_per_km is not None:
            pp.create_line_from_parameters(
                net,
                a,
                b,
                length_km=max(ln.length_km, 1e-4),
                r_ohm_per_km=ln.r_ohm_per_km,
                x_ohm_per_km=ln.x_ohm_per_km,
                c_nf_per_km=ln.c_nf_per_km or 0.0,
                max_i_ka=ln.max_i_ka or 0.27,
                name=ln.name,
            )
        else:
            pp.create_line(
                net,
                a,
                b,
                length_km=max(ln.length_km, 1e-4),
                std_type=std or DEFAULT_LINE,
                name=ln.name,
            )
            if ln.max_i_ka:
                net.line.loc[net.line.index[-1], "max_i_ka"] = ln.max_i_ka
    site_load_index = {}
    for s in sites:
        if s.bus and s.bus in buses:
            at = buses[s.bus]
        else:
            at = bus(s.bus or f"{s.code} site", lv_kv.get(s.transformer, default_kv))
            pp.create_line(
                net,
                lv_of[s.transformer],
                at,
                length_km=0.05,
                std_type=DEFAULT_LINE,
                name=f"{s.code} service cable",
            )
        site_load_index[s.code] = pp.create_load(net, at, p_mw=0.0, q_mvar=0.0, name=s.code)
    return GridModel(net=net, site_load_index=site_load_index, trafo_index=trafo_index)


def score(max_loading: float, max_dev: float, converged: bool = True) -> float:
    if not converged:
        return 0.0
    s_l = float(np.clip((LOAD_ZERO - max_loading) / (LOAD_ZERO - LOAD_OK), 0.0, 1.0))
    s_v = float(np.clip((VOLT_ZERO - max_dev) / (VOLT_ZERO - VOLT_OK), 0.0, 1.0))
    return round(100.0 * min(s_l, s_v), 2)


def run_state(model: GridModel, site_power_w: dict[str, float]) -> StateResult:
    import pandapower as pp

    net = model.net
    tan_phi = math.tan(math.acos(POWER_FACTOR))
    p = np.zeros(len(net.load))
    for code, idx in model.site_load_index.items():
        p[net.load.index.get_loc(idx)] = site_power_w.get(code, 0.0) / 1e6
    net.load["p_mw"] = p
    net.load["q_mvar"] = np.where(p > 0, p * tan_phi, 0.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                # Warm start from the previous state (≈2.5× faster over a day of intervals).
                init = "results" if getattr(net, "converged", False) else "auto"
                pp.runpp(net, numba=False, max_iteration=30, init=init)
            except pp.LoadflowNotConverged:
                pp.runpp(net, numba=False, max_iteration=50, init="flat")
    except pp.LoadflowNotConverged:
        return StateResult(
            False,
            0.0,
            float("nan"),
            float("nan"),
            float("nan"),
            violations=[{"kind": "not_converged", "subject": "grid", "value": 0, "limit": 0}],
        )
    trafos = {}
    violations = []
    for name, idx in model.trafo_index.items():
        loading = float(net.res_trafo.at[idx, "loading_percent"])
        trafos[name] = {
            "loading_percent": round(loading, 2),
            "p_kw": round(float(net.res_trafo.at[idx, "p_hv_mw"]) * 1000, 2),
        }
        if loading > LOADING_LIMIT:
            violations.append(
                {
                    "kind": "overload",
                    "subject": name,
                    "value": round(loading, 2),
                    "limit": LOADING_LIMIT,
                }
            )
    line_loading = net.res_line["loading_percent"].to_numpy(dtype=float)
    for idx in np.flatnonzero(line_loading > LOADING_LIMIT)[:20]:
        violations.append(
            {
                "kind": "line_overload",
                "subject": str(net.line.name.iat[idx]),
                "value": round(float(line_loading[idx]), 2),
                "limit": LOADING_LIMIT,
            }
        )
    vm = net.res_bus["vm_pu"].to_numpy(dtype=float)
    names = net.bus["name"].to_numpy()
    for idx in np.flatnonzero(vm < V_MIN)[:20]:
        violations.append(
            {
                "kind": "undervoltage",
                "subject": str(names[idx]),
                "value": round(float(vm[idx]), 4),
                "limit": V_MIN,
            }
        )
    for idx in np.flatnonzero(vm > V_MAX)[:20]:
        violations.append(
            {
                "kind": "overvoltage",
                "subject": str(names[idx]),
                "value": round(float(vm[idx]), 4),
                "limit": V_MAX,
            }
        )
    max_loading = max(
        [t["loading_percent"] for t in trafos.values()]
        + ([float(np.nanmax(line_loading))] if len(line_loading) else [])
    )
    dev = float(np.nanmax(np.abs(vm - 1.0)))
    return StateResult(
        converged=True,
        score=score(max_loading, dev),
        max_loading_percent=round(max_loading, 2),
        min_vm_pu=round(float(np.nanmin(vm)), 4),
        max_vm_pu=round(float(np.nanmax(vm)), 4),
        transformers=trafos,
        violations=violations,
        bus_voltages={str(n): round(float(v), 4) for n, v in zip(names, vm, strict=True)},
    )
