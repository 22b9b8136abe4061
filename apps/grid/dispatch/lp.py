"""Day-ahead dispatch as a linear program (scipy.optimize.linprog, HiGHS). Pure: no Django.

Decision variables per interval t (length Δ h):
  battery b: charge c[b,t] ∈ [0, Pc_b], discharge d[b,t] ∈ [0, Pd_b] (W),
             state of charge e[b,t+1] = e[b,t] + η_b·c[b,t]·Δ − d[b,t]·Δ/η_b (Wh),
             E_min_b ≤ e ≤ E_max_b, e[b,T] ≥ final SoC (default: the initial SoC);
  flexible load v (EV): x[v,t] ∈ [0, P_v] inside its window [available_from, deadline), 0
             outside, Σ_t η_v·x[v,t]·Δ ≥ energy_v (energy needed by the deadline);
  grid: import g⁺[t] ≥ 0, export g⁻[t] ≥ 0 at the community's connection,
        g⁺[t] − g⁻[t] = Σ_k flow[k,t].
Transformer k: flow[k,t] = base[k,t] + Σ_{b∈k}(c − d) + Σ_{v∈k} x, and −C_k ≤ flow[k,t] ≤ C_k.
Objective: min Σ_t Δ/1000·(p_t·g⁺[t] − s_t·g⁻[t]) + ε·Σ(c + d)   (ε: a tiny cycling cost).

If the program is infeasible, an *elastic* copy adds penalised slack to every transformer limit
and EV energy requirement; the non-zero slacks name the binding constraints (which transformer,
when, by how much; which EV cannot be served) and that minimum-violation plan, which respects
every device limit, is the safe fallback. If even that fails, every device is held idle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

CYCLING_COST = 1e-6  # per Wh of throughput: breaks ties, forbids simultaneous charge/discharge
CAPACITY_PENALTY = 1e4  # per Wh over a transformer limit (elastic program): safety first
ENERGY_PENALTY = 1e3  # per Wh of flexible-load energy not delivered (elastic program)


@dataclass(frozen=True)
class Battery:
    id: str
    transformer: str
    capacity_wh: float
    soc_wh: float
    max_charge_w: float
    max_discharge_w: float
    efficiency: float = 0.95  # one-way; round trip = efficiency²
    min_soc_wh: float = 0.0
    final_soc_wh: float | None = None  # default: end the day where it started


@dataclass(frozen=True)
class FlexibleLoad:
    id: str
    transformer: str
    max_power_w: float
    energy_wh: float
    available_from: int = 0  # first interval index
    deadline: int | None = None  # exclusive interval index; None = end of horizon
    efficiency: float = 1.0


@dataclass
class Problem:
    step_hours: float
    import_price: np.ndarray  # per kWh, length T
    export_price: np.ndarray  # per kWh, length T
    transformer_capacity_w: dict[str, float]
    base_load_w: dict[str, np.ndarray]  # net load (load − PV) per transformer, W, length T
    batteries: list[Battery] = field(default_factory=list)
    flexible_loads: list[FlexibleLoad] = field(default_factory=list)

    @property
    def intervals(self) -> int:
        return len(self.import_price)


@dataclass
class Plan:
    status: str  # "optimal" | "fallback_min_violation" | "fallback_idle"
    setpoints_w: dict[str, np.ndarray]  # + consumes/charges, − discharges
    soc_wh: dict[str, np.ndarray]  # batteries: T+1 values
    transformer_flow_w: dict[str, np.ndarray]
    cost: float
    binding: list[dict] = field(default_factory=list)
    solve_seconds: float = 0.0
    message: str = ""


def validate(problem: Problem) -> None:
    T = problem.intervals
    if T == 0:
        raise ValueError("the horizon has no intervals")
    if len(problem.export_price) != T:
        raise ValueError("import and export prices must have the same length")
    for k, base in problem.base_load_w.items():
        if k not in problem.transformer_capacity_w:
            raise ValueError(f"base load for unknown transformer {k!r}")
        if len(base) != T:
            raise ValueError(f"base load of transformer {k!r} has {len(base)} values, not {T}")
    for dev in [*problem.batteries, *problem.flexible_loads]:
        if dev.transformer not in problem.transformer_capacity_w:
            raise ValueError(f"device {dev.id!r} is on unknown transformer {dev.transformer!r}")
    for b in problem.batteries:
        if not (0 < b.efficiency <= 1):
            raise ValueError(f"battery {b.id!r}: efficiency must be in (0, 1]")
        if not (b.min_soc_wh <= b.soc_wh <= b.capacity_wh):
            raise ValueError(f"battery {b.id!r}: state of charge outside [min, capacity]")


def _cost(problem: Problem, flows: dict[str, np.ndarray]) -> float:
    total = np.zeros(problem.intervals)
    for f in flows.values():
        total += f
    imp = np.clip(total, 0, None)
    exp = np.clip(-total, 0, None)
    return float(
        np.sum(
            problem.step_hours / 1000 * (problem.import_price * imp - problem.export_price * exp)
        )
    )


def unmanaged(problem: Problem) -> Plan:
    """What happens without dispatch: batteries idle, EVs charge at full power when plugged in."""
    T, dt = problem.intervals, problem.step_hours
    setpoints: dict[str, np.ndarray] = {}
    flows = {k: np.asarray(v, dtype=float).copy() for k, v in problem.base_load_w.items()}
    for k in problem.transformer_capacity_w:
        flows.setdefault(k, np.zeros(T))
    soc = {}
    for b in problem.batteries:
        setpoints[b.id] = np.zeros(T)
        soc[b.id] = np.full(T + 1, b.soc_wh)
    for v in problem.flexible_loads:
        x = np.zeros(T)
        remaining = v.energy_wh
        end = T if v.deadline is None else min(v.deadline, T)
        for t in range(v.available_from, end):
            if remaining <= 1e-9:
                break
            power = min(v.max_power_w, remaining / (v.efficiency * dt))
            x[t] = power
            remaining -= power * v.efficiency * dt
        setpoints[v.id] = x
        flows[v.transformer] += x
    return Plan("unmanaged", setpoints, soc, flows, _cost(problem, flows))


def solve(problem: Problem) -> Plan:
    validate(problem)
    started = time.perf_counter()
    plan = _solve(problem, elastic=False)
    if plan is None:
        plan = _solve(problem, elastic=True)
        if plan is None:
            plan = _idle(problem)
    plan.solve_seconds = time.perf_counter() - started
    return plan


def _idle(problem: Problem) -> Plan:
    T = problem.intervals
    flows = {
        k: np.asarray(problem.base_load_w.get(k, np.zeros(T)), float).copy()
        for k in problem.transformer_capacity_w
    }
    setpoints = {d.id: np.zeros(T) for d in [*problem.batteries, *problem.flexible_loads]}
    soc = {b.id: np.full(T + 1, b.soc_wh) for b in problem.batteries}
    return Plan(
        "fallback_idle",
        setpoints,
        soc,
        flows,
        _cost(problem, flows),
        message="the solver failed even on the elastic program; every device is held idle",
    )


def _solve(problem: Problem, *, elastic: bool) -> Plan | None:  # noqa: C901 - one LP assembly
    T, dt = problem.intervals, problem.step_hours
    trafos = list(problem.transformer_capacity_w)
    tidx = {k: i for i, k in enumerate(trafos)}
    nb, nv, nk = len(problem.batteries), len(problem.flexible_loads), len(trafos)

    # Variable layout (blocks of length T unless noted).
    offs = {}
    n = 0

    def block(name: str, size: int) -> int:
        nonlocal n
        offs[name] = n
        n += size
        return offs[name]

    c0 = block("c", nb * T)
    d0 = block("d", nb * T)
    e0 = block("e", nb * (T + 1))
    x0 = block("x", nv * T)
    gp0 = block("gp", T)
    gm0 = block("gm", T)
    if elastic:
        su0 = block("su", nk * T)  # over the upper limit
        sl0 = block("sl", nk * T)  # below the lower (reverse-flow) limit
        sv0 = block("sv", nv)  # EV energy not delivered

    cost = np.zeros(n)
    lb = np.zeros(n)
    ub = np.full(n, np.inf)
    cost[gp0 : gp0 + T] = dt / 1000 * problem.import_price
    cost[gm0 : gm0 + T] = -dt / 1000 * problem.export_price
    for i, b in enumerate(problem.batteries):
        sl = slice(c0 + i * T, c0 + (i + 1) * T)
        ub[sl] = b.max_charge_w
        cost[sl] = CYCLING_COST * dt
        sl = slice(d0 + i * T, d0 + (i + 1) * T)
        ub[sl] = b.max_discharge_w
        cost[sl] = CYCLING_COST * dt
        sl = slice(e0 + i * (T + 1), e0 + (i + 1) * (T + 1))
        lb[sl] = b.min_soc_wh
        ub[sl] = b.capacity_wh
        lb[e0 + i * (T + 1)] = ub[e0 + i * (T + 1)] = b.soc_wh
        final = b.soc_wh if b.final_soc_wh is None else b.final_soc_wh
        lb[e0 + i * (T + 1) + T] = max(b.min_soc_wh, min(final, b.capacity_wh))
    for j, v in enumerate(problem.flexible_loads):
        end = T if v.deadline is None else min(v.deadline, T)
        for t in range(T):
            ub[x0 + j * T + t] = v.max_power_w if v.available_from <= t < end else 0.0
    if elastic:
        cost[su0 : su0 + nk * T] = CAPACITY_PENALTY * dt
        cost[sl0 : sl0 + nk * T] = CAPACITY_PENALTY * dt
        cost[sv0 : sv0 + nv] = ENERGY_PENALTY

    eq_rows, eq_cols, eq_vals, beq = [], [], [], []
    row = 0
    # SoC dynamics: e[t+1] − e[t] − η·Δ·c[t] + Δ/η·d[t] = 0
    for i, b in enumerate(problem.batteries):
        for t in range(T):
            eq_rows += [row] * 4
            eq_cols += [
                e0 + i * (T + 1) + t + 1,
                e0 + i * (T + 1) + t,
                c0 + i * T + t,
                d0 + i * T + t,
            ]
            eq_vals += [1.0, -1.0, -b.efficiency * dt, dt / b.efficiency]
            beq.append(0.0)
            row += 1
    # Grid balance: g⁺ − g⁻ − Σ device terms = Σ_k base
    base_total = np.zeros(T)
    for k in trafos:
        base_total += np.asarray(problem.base_load_w.get(k, np.zeros(T)), dtype=float)
    for t in range(T):
        cols = [gp0 + t, gm0 + t]
        vals = [1.0, -1.0]
        for i in range(nb):
            cols += [c0 + i * T + t, d0 + i * T + t]
            vals += [-1.0, 1.0]
        for j in range(nv):
            cols.append(x0 + j * T + t)
            vals.append(-1.0)
        eq_rows += [row] * len(cols)
        eq_cols += cols
        eq_vals += vals
        beq.append(base_total[t])
        row += 1
    A_eq = sparse.csr_matrix((eq_vals, (eq_rows, eq_cols)), shape=(row, n))

    ub_rows, ub_cols, ub_vals, bub = [], [], [], []
    row = 0
    # Transformer limits: ± (Σ devices on k) ≤ C_k ∓ base[k,t]  (+ slack when elastic)
    by_trafo_b: dict[str, list[int]] = {k: [] for k in trafos}
    by_trafo_v: dict[str, list[int]] = {k: [] for k in trafos}
    for i, b in enumerate(problem.batteries):
        by_trafo_b[b.transformer].append(i)
    for j, v in enumerate(problem.flexible_loads):
        by_trafo_v[v.transformer].append(j)
    for k in trafos:
        cap = problem.transformer_capacity_w[k]
        base = np.asarray(problem.base_load_w.get(k, np.zeros(T)), dtype=float)
        ki = tidx[k]
        for sign in (1.0, -1.0):
            for t in range(T):
                cols, vals = [], []
                for i in by_trafo_b[k]:
                    cols += [c0 + i * T + t, d0 + i * T + t]
                    vals += [sign, -sign]
                for j in by_trafo_v[k]:
                    cols.append(x0 + j * T + t)
                    vals.append(sign)
                if elastic:
                    cols.append((su0 if sign > 0 else sl0) + ki * T + t)
                    vals.append(-1.0)
                ub_rows += [row] * len(cols)
                ub_cols += cols
                ub_vals += vals
                bub.append(cap - sign * base[t])
                row += 1
    # EV energy: −Σ η·Δ·x[v,t] (− slack) ≤ −energy
    for j, v in enumerate(problem.flexible_loads):
        cols = list(range(x0 + j * T, x0 + (j + 1) * T))
        vals = [-v.efficiency * dt] * T
        if elastic:
            cols.append(sv0 + j)
            vals.append(-1.0)
        ub_rows += [row] * len(cols)
        ub_cols += cols
        ub_vals += vals
        bub.append(-v.energy_wh)
        row += 1
    A_ub = sparse.csr_matrix((ub_vals, (ub_rows, ub_cols)), shape=(row, n))

    res = linprog(
        cost,
        A_ub=A_ub if row else None,
        b_ub=np.asarray(bub) if row else None,
        A_eq=A_eq,
        b_eq=np.asarray(beq),
        bounds=np.column_stack([lb, ub]),
        method="highs",
    )
    if res.status != 0 or res.x is None:
        return None
    z = res.x
    setpoints: dict[str, np.ndarray] = {}
    soc: dict[str, np.ndarray] = {}
    flows = {
        k: np.asarray(problem.base_load_w.get(k, np.zeros(T)), dtype=float).copy() for k in trafos
    }
    for i, b in enumerate(problem.batteries):
        p = z[c0 + i * T : c0 + (i + 1) * T] - z[d0 + i * T : d0 + (i + 1) * T]
        setpoints[b.id] = p
        soc[b.id] = z[e0 + i * (T + 1) : e0 + (i + 1) * (T + 1)]
        flows[b.transformer] += p
    for j, v in enumerate(problem.flexible_loads):
        x = z[x0 + j * T : x0 + (j + 1) * T]
        setpoints[v.id] = x
        flows[v.transformer] += x
    plan = Plan("optimal", setpoints, soc, flows, _cost(problem, flows))
    if elastic:
        plan.status = "fallback_min_violation"
        plan.binding = _binding(problem, z, offs, trafos, T, dt)
        plan.message = "infeasible: " + "; ".join(b["message"] for b in plan.binding[:5])
    return plan


def _binding(problem, z, offs, trafos, T, dt) -> list[dict]:
    out: list[dict] = []
    for ki, k in enumerate(trafos):
        cap = problem.transformer_capacity_w[k]
        for key, what in (("su", "import"), ("sl", "reverse flow")):
            s = z[offs[key] + ki * T : offs[key] + (ki + 1) * T]
            over = np.flatnonzero(s > 1e-3)
            if len(over):
                out.append(
                    {
                        "constraint": "transformer_capacity",
                        "transformer": k,
                        "direction": what,
                        "intervals": over.tolist(),
                        "max_excess_w": round(float(s.max()), 1),
                        "message": (
                            f"transformer {k} {what} exceeds its {cap:.0f} W limit in "
                            f"{len(over)} interval(s) (first index {int(over[0])}) by up to "
                            f"{float(s.max()):.0f} W even with every flexible device shifted"
                        ),
                    }
                )
    for j, v in enumerate(problem.flexible_loads):
        short = float(z[offs["sv"] + j])
        if short > 1e-3:
            out.append(
                {
                    "constraint": "flexible_energy",
                    "device": v.id,
                    "shortfall_wh": round(short, 1),
                    "message": (
                        f"flexible load {v.id} can receive only {v.energy_wh - short:.0f} of "
                        f"{v.energy_wh:.0f} Wh before its deadline"
                    ),
                }
            )
    return out
