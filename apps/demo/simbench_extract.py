"""Extract the demo grid and its 2016 profiles from the installed ``simbench`` package (offline).

Loading a SimBench grid with its profiles takes ~9 s (it parses the package's large CSV files), so
the extraction runs once and writes two small files that are committed under ``data/``:

* ``lv_rural3_profiles.npz`` — the 2016 15-minute active-power profiles the demo uses (households
  H0-A/B/C/G/L, commercial G1/G4/G5/G6, EV charging HLS/APLS, heat pumps Air/Soil, PV1/3/4/7),
  each quantised to ``uint16`` with its own scale (error < 2e-5 of the column's maximum).
* ``lv_rural3_grid.json`` — buses with coordinates, lines, the transformer, loads, PV (sgen) and
  storage of ``1-LV-rural3--2-sw``, the LV branches leaving the transformer's busbar, SimBench's
  LV transformer types, and the upstream MV data (HV/MV transformers and the MV cable rating of
  ``1-MV-rural--0-sw``, the grid the LV grid hangs from).

Regenerate with ``python -m apps.demo.simbench_extract`` (pure; no Django import).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

GRID_CODE = "1-LV-rural3--2-sw"
MV_GRID_CODE = "1-MV-rural--0-sw"
DATA_DIR = Path(__file__).with_name("data")
PROFILES_FILE = "lv_rural3_profiles.npz"
GRID_FILE = "lv_rural3_grid.json"
INTERVALS_2016 = 366 * 96
# The co-owned wind plant: a wind turbine of the MV grid the LV grid hangs from (1-MV-rural), read
# from the package's own data tables (its profile is not one of the LV grid's).
WIND_TURBINE = "MV1.101 SGen 1"
WIND_DATA = "1-complete_data-mixed-all-0-sw"  # the dataset of 1-MV-rural--0-sw


def _geo(value: object) -> list[float] | None:
    if not isinstance(value, str):
        return None
    coords = json.loads(value).get("coordinates")
    return [round(float(coords[0]), 6), round(float(coords[1]), 6)] if coords else None


def _branches(net, lv_bus: int) -> list[list[int]]:
    """Bus groups of the branches that leave the transformer's LV busbar (line graph only)."""
    adjacency: dict[int, set[int]] = defaultdict(set)
    for row in net.line.itertuples():
        adjacency[int(row.from_bus)].add(int(row.to_bus))
        adjacency[int(row.to_bus)].add(int(row.from_bus))
    seen = {lv_bus}
    branches = []
    for first in sorted(adjacency[lv_bus]):
        if first in seen:
            continue
        stack, group = [first], []
        seen.add(first)
        while stack:
            bus = stack.pop()
            group.append(bus)
            for nxt in adjacency[bus]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        branches.append(sorted(group))
    return branches


def _distances(net, lv_bus: int) -> dict[int, float]:
    """Cable distance (km) from the LV busbar to every bus."""
    adjacency: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for row in net.line.itertuples():
        adjacency[int(row.from_bus)].append((int(row.to_bus), float(row.length_km)))
        adjacency[int(row.to_bus)].append((int(row.from_bus), float(row.length_km)))
    dist = {lv_bus: 0.0}
    stack = [lv_bus]
    while stack:  # radial grid: a tree walk is a shortest-path walk
        bus = stack.pop()
        for nxt, length in adjacency[bus]:
            if nxt not in dist:
                dist[nxt] = dist[bus] + length
                stack.append(nxt)
    return dist


def _mv_info(simbench, trafo, net) -> dict:
    """Upstream data from the MV grid the LV grid hangs from: HV/MV transformers, cable rating."""
    mv = simbench.get_simbench_net(MV_GRID_CODE)
    feeder_line = mv.line[mv.line.std_type.str.startswith("NA2XS2Y")].max_i_ka
    return {
        "grid": MV_GRID_CODE,
        "hv_mv_transformers": [
            {"name": r.name, "std_type": r.std_type, "capacity_kva": round(r.sn_mva * 1000)}
            for r in mv.trafo.itertuples()
        ],
        "vn_kv": float(trafo.vn_hv_kv),
        # A 20 kV cable feeder is limited by its weakest cable: sqrt(3) * U * I.
        "feeder_capacity_kw": round(
            math.sqrt(3) * float(trafo.vn_hv_kv) * float(feeder_line.min()) * 1000
        ),
        "feeder_cable_max_i_ka": float(feeder_line.min()),
        "hv_bus_geo": _geo(net.bus.geo[int(trafo.hv_bus)]),
    }


def _wind_turbine(simbench) -> tuple[dict, np.ndarray]:
    """The wind turbine's row of SimBench's RES table and its 2016 profile (per unit of rating)."""
    folder = Path(simbench.__file__).parent / "networks" / WIND_DATA
    rows = (folder / "RES.csv").read_text().splitlines()
    header = rows[0].split(";")
    turbine = next(
        dict(zip(header, line.split(";"), strict=True))
        for line in rows[1:]
        if line.split(";")[0] == WIND_TURBINE
    )
    lines = (folder / "RESProfile.csv").read_text().splitlines()
    column = lines[0].split(";").index(turbine["profile"])
    values = np.array([float(line.split(";")[column]) for line in lines[1:]], dtype=np.float64)
    info = {
        "name": turbine["id"],
        "node": turbine["node"],
        "type": turbine["type"],
        "profile": turbine["profile"],
        "capacity_kw": round(float(turbine["sR"]) * 1000),
        "grid": MV_GRID_CODE,
        "dataset": WIND_DATA,
    }
    return info, values


def extract(out_dir: Path = DATA_DIR, *, with_mv: bool = True) -> None:
    """Write the two data files into `out_dir` (`with_mv=False` skips the ~8 s MV grid load and
    leaves the "mv" section out; the test of the committed files uses it)."""
    import simbench  # imported lazily: ~2 s import and ~9 s to load the grid

    net = simbench.get_simbench_net(GRID_CODE)
    bus_name = net.bus["name"].to_dict()
    trafo = net.trafo.iloc[0]
    lv_bus = int(trafo.lv_bus)
    dist = _distances(net, lv_bus)

    loads = [
        {
            "name": r.name,
            "bus": bus_name[r.bus],
            "profile": r.profile,
            "p_kw": round(float(r.p_mw) * 1000, 3),
        }
        for r in net.load.itertuples()
    ]
    sgens = [
        {
            "name": r.name,
            "bus": bus_name[r.bus],
            "profile": r.profile,
            "p_kw": round(float(r.p_mw) * 1000, 3),
        }
        for r in net.sgen.itertuples()
    ]
    storages = [
        {
            "name": r.name,
            "bus": bus_name[r.bus],
            "profile": r.profile,
            "p_kw": round(abs(float(r.p_mw)) * 1000, 3),
            "e_kwh": round(float(r.max_e_mwh) * 1000, 3),
            "efficiency_percent": float(r.efficiency_percent)
            if not math.isnan(r.efficiency_percent)
            else None,
        }
        for r in net.storage.itertuples()
    ]
    lines = [
        {
            "name": r.name,
            "from": bus_name[r.from_bus],
            "to": bus_name[r.to_bus],
            "length_km": round(float(r.length_km), 6),
            "std_type": r.std_type,
            "max_i_ka": float(r.max_i_ka),
        }
        for r in net.line.itertuples()
    ]
    buses = {
        bus_name[i]: {
            "geo": _geo(r.geo),
            "vn_kv": float(r.vn_kv),
            "distance_km": round(dist[i], 6) if i in dist else None,
        }
        for i, r in zip(net.bus.index, net.bus.itertuples(), strict=True)
    }

    # SimBench's own LV transformer types (vk from vmImp, vkr = copper losses / rating).
    types_csv = Path(simbench.__file__).parent / "networks" / "1-complete_data-mixed-all-1-sw"
    trafo_types = []
    for line in (types_csv / "TransformerType.csv").read_text().splitlines()[1:]:
        cols = line.split(";")
        if cols[2] == "20" and cols[3] == "0.4":
            s_mva, vk, p_cu = float(cols[1]), float(cols[5]), float(cols[6])
            trafo_types.append(
                {
                    "name": cols[0].strip(),
                    "capacity_kva": round(s_mva * 1000),
                    "vk_percent": vk,
                    "vkr_percent": round(p_cu / (s_mva * 1000) * 100, 4),
                }
            )
    by_size = {t["capacity_kva"]: t for t in trafo_types}
    trafo_types = [by_size[size] for size in sorted(by_size)]

    mv_info = _mv_info(simbench, trafo, net) if with_mv else None
    wind_info, wind_profile = _wind_turbine(simbench)

    grid = {
        "source": f"simbench {simbench.__version__} {GRID_CODE}",
        "transformer": {
            "name": trafo["name"],
            "std_type": trafo.std_type,
            "capacity_kva": round(float(trafo.sn_mva) * 1000),
            "vk_percent": float(trafo.vk_percent),
            "vkr_percent": float(trafo.vkr_percent),
            "hv_bus": bus_name[int(trafo.hv_bus)],
            "lv_bus": bus_name[lv_bus],
        },
        "branches": [[bus_name[b] for b in group] for group in _branches(net, lv_bus)],
        "buses": buses,
        "lines": lines,
        "loads": loads,
        "sgens": sgens,
        "storages": storages,
        "transformer_types": trafo_types,
        "wind": wind_info,
    }
    if mv_info is not None:
        grid["mv"] = mv_info

    # Profiles actually referenced by the grid's elements (active power only).
    load_p = net.profiles["load"]
    res = net.profiles["renewables"]
    columns: dict[str, np.ndarray] = {}
    for name in sorted({load["profile"] for load in loads}):
        columns[name] = load_p[f"{name}_pload"].to_numpy(dtype=np.float64)
    for name in sorted({s["profile"] for s in sgens}):
        columns[name] = res[name].to_numpy(dtype=np.float64)
    columns[wind_info["profile"]] = wind_profile
    names = sorted(columns)
    scales = np.array([max(float(columns[n].max()), 1e-12) for n in names])
    quantised = np.stack(
        [
            np.round(np.clip(columns[n], 0, None) / s * 65535).astype(np.uint16)
            for n, s in zip(names, scales, strict=True)
        ],
        axis=1,
    )
    assert quantised.shape == (INTERVALS_2016, len(names))
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / PROFILES_FILE, names=np.array(names), scales=scales, q=quantised)
    (out_dir / GRID_FILE).write_text(json.dumps(grid, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    extract()
