"""Grid benchmarks.

1. Forecasting: rolling-origin backtest of every method on two half-hourly series with daily
   and weekly cycles — the demo cooperative's aggregate household load (apps/demo/profiles,
   eight weeks) and SimBench's high-voltage urban load profile (shipped with `simbench`, eight
   weeks) — the chosen method's MAPE next to the weekly and daily seasonal naive's, same
   origins, same run.
2. Dispatch (acceptance 2): LP solve time for 100 devices (50 batteries, 50 EV chargers) × 96
   intervals on 4 transformers, with the dispatched and unmanaged cost and peak loading.
3. Stability: pandapower power-flow time per state on the demo LV grid.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from bench.common import emit

BENCH = "grid"
SIMBENCH_DATA = "1-complete_data-mixed-all-1-sw"


def _community_load(start: datetime, days: int) -> pd.Series:
    from apps.demo import profiles

    community = profiles.community()
    end = start + timedelta(days=days)
    total = sum(profiles.asset_energy_wh(h, "load", start, end) for h in community.households)
    index = pd.date_range(start, periods=len(total), freq="15min", tz="UTC")
    return pd.Series(np.asarray(total, dtype=float), index=index)


def _simbench_load(column: str, start: str, days: int) -> pd.Series:
    """A SimBench 2016 load profile shipped with the installed `simbench` package (15 min)."""
    from pathlib import Path

    import simbench

    path = Path(simbench.__file__).parent / "networks" / SIMBENCH_DATA / "LoadProfile.csv"
    frame = pd.read_csv(path, sep=";", usecols=["time", column])
    index = pd.to_datetime(frame["time"], format="%d.%m.%Y %H:%M").dt.tz_localize("UTC")
    series = pd.Series(frame[column].to_numpy(dtype=float), index=pd.DatetimeIndex(index))
    return series[start:].iloc[: days * 96]


def _backtest_figures(name: str, series: pd.Series, *, train_days: int, test_days: int) -> None:
    """Backtest every method on a half-hourly series; print the chosen method's MAPE beside
    the naive baselines' (same origins, same run)."""
    from apps.grid.forecasting.backtest import rolling_origin_backtest
    from apps.grid.forecasting.series import regularise

    half_hourly = series.resample("30min").sum()
    clean = regularise(half_hourly, timedelta(minutes=30))
    t0 = time.perf_counter()
    result = rolling_origin_backtest(clean, train_days=train_days, test_days=test_days)
    elapsed = time.perf_counter() - t0
    chosen = result.methods[result.chosen]
    weekly = result.methods["seasonal_naive_weekly"]
    daily = result.methods["seasonal_naive_daily"]
    label = f"{name}, 30 min, {len(half_hourly) // 48} days"
    emit(
        BENCH,
        f"backtest_{name}_chosen_mape",
        chosen.mape,
        "ratio",
        method=result.chosen,
        nmae=chosen.nmae,
        origins=chosen.origins,
        series=label,
    )
    emit(BENCH, f"backtest_{name}_weekly_naive_mape", weekly.mape, "ratio", nmae=weekly.nmae)
    emit(BENCH, f"backtest_{name}_daily_naive_mape", daily.mape, "ratio", nmae=daily.nmae)
    emit(
        BENCH,
        f"backtest_{name}_mape_gain_over_weekly_naive",
        100 * (1 - chosen.mape / weekly.mape),
        "%",
        method=result.chosen,
    )
    for method, res in result.methods.items():
        emit(
            BENCH,
            f"backtest_{name}_{method}_mape",
            res.mape if res.mape is not None else float("nan"),
            "ratio",
            nmae=res.nmae,
            mase=res.mase,
            fit_seconds=round(res.fit_seconds, 3),
        )
    emit(
        BENCH,
        f"backtest_{name}_total_seconds",
        elapsed,
        "s",
        methods=len(result.methods),
        origins=chosen.origins,
    )


def bench_forecasting() -> None:
    # Eight weeks of the demo community's aggregate load (a Monday after the holidays), and a
    # packaged high-voltage urban load profile: 28 training days before each of 28 origins.
    community = _community_load(datetime(2026, 1, 12, tzinfo=UTC), days=56)
    _backtest_figures("community", community, train_days=28, test_days=28)
    hv_urban = _simbench_load("hv_urban_pload", "2016-01-11", days=56)
    _backtest_figures("simbench_hv_urban", hv_urban, train_days=28, test_days=28)


def bench_dispatch() -> None:
    from apps.grid.dispatch.lp import Battery, FlexibleLoad, Problem, solve, unmanaged

    T = 96
    t = np.arange(T)
    price = np.where((t >= 68) & (t < 84), 0.42, np.where(t < 24, 0.22, 0.30))
    rng = np.random.default_rng(7)
    trafos = {f"T{k}": 160_000.0 for k in range(4)}
    base = {
        k: 60_000 + 60_000 * np.exp(-(((t - 74) / 7.0) ** 2)) + rng.normal(0, 2_000, T)
        for k in trafos
    }
    batteries = [
        Battery(
            id=f"bat{i}",
            transformer=f"T{i % 4}",
            capacity_wh=float(rng.integers(5, 15)) * 1000,
            soc_wh=4_000,
            max_charge_w=5_000,
            max_discharge_w=5_000,
            min_soc_wh=1_000,
        )
        for i in range(50)
    ]
    evs = [
        FlexibleLoad(
            id=f"ev{i}",
            transformer=f"T{i % 4}",
            max_power_w=11_000,
            energy_wh=float(rng.integers(8, 25)) * 1000,
            available_from=int(rng.integers(64, 76)),
            deadline=T,
        )
        for i in range(50)
    ]
    problem = Problem(0.25, price, np.full(T, 0.08), trafos, base, batteries, evs)
    before = unmanaged(problem)
    plan = solve(problem)
    emit(
        BENCH,
        "dispatch_lp_solve_seconds",
        plan.solve_seconds,
        "s",
        devices=100,
        intervals=T,
        status=plan.status,
    )
    emit(BENCH, "dispatch_cost", plan.cost, "EUR/day", unmanaged=round(before.cost, 2))
    emit(
        BENCH,
        "dispatch_peak_loading_percent",
        100 * max(f.max() / trafos[k] for k, f in plan.transformer_flow_w.items()),
        "%",
        unmanaged=round(
            100 * max(f.max() / trafos[k] for k, f in before.transformer_flow_w.items()), 1
        ),
    )


def bench_power_flow() -> None:
    from apps.demo import profiles
    from apps.grid.stability import LineSpec, SiteSpec, TrafoSpec, build_grid, run_state

    grid = profiles.grid_data()
    lv = grid["transformer"]["lv_bus"]
    trafo = TrafoSpec(name="T", sn_kva=grid["transformer"]["capacity_kva"], lv_bus=lv)
    lines = [
        LineSpec(
            name=ln["name"],
            from_bus=ln["from"],
            to_bus=ln["to"],
            length_km=ln["length_km"],
            std_type=ln["std_type"],
            max_i_ka=ln["max_i_ka"],
        )
        for ln in grid["lines"]
    ]
    sites = [
        SiteSpec(code=f"s{i}", transformer="T", bus=load["bus"])
        for i, load in enumerate(grid["loads"])
    ]
    model = build_grid([trafo], lines, sites)
    rng = np.random.default_rng(3)
    t0 = time.perf_counter()
    runs = 48
    for _ in range(runs):
        run_state(model, {s.code: float(rng.uniform(0, 4_000)) for s in sites})
    emit(
        BENCH,
        "power_flow_seconds_per_state",
        (time.perf_counter() - t0) / runs,
        "s",
        buses=len(model.net.bus),
        lines=len(model.net.line),
    )


def run() -> None:
    bench_forecasting()
    bench_dispatch()
    bench_power_flow()


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    run()
