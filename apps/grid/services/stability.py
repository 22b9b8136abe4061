"""Stability services: pandapower power flow of the stored topology at measured and forecast
states, the stability score, alerts, and the hourly score recorded through GridBalancer."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Max

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.chain.selectors import chain_intent_exists
from apps.chain.services import chain_intent_submit
from apps.core.intervals import INTERVAL, ensure_utc, floor_interval
from apps.core.types import Actor
from apps.grid import realtime
from apps.grid.models import (
    ConnectionPoint,
    GridAlert,
    GridLine,
    StabilityAssessment,
    StateSource,
    Transformer,
)
from apps.grid.selectors import forecast_values
from apps.grid.stability import GridModel, LineSpec, SiteSpec, TrafoSpec, build_grid, run_state

logger = logging.getLogger(__name__)
_MODEL_CACHE: dict[str, GridModel] = {}
WH_TO_W = 3600 / INTERVAL.total_seconds()


def _topology_key() -> str:
    parts = []
    for model in (Transformer, GridLine, ConnectionPoint):
        agg = model.objects.aggregate(n=Count("pk"), m=Max("pk"))
        parts.append(f"{agg['n']}:{agg['m']}")
    return "|".join(parts)


def grid_model() -> GridModel | None:
    """The pandapower model of the stored topology (cached until the topology changes)."""
    key = _topology_key()
    if key in _MODEL_CACHE:
        return _MODEL_CACHE[key]
    trafos = [
        TrafoSpec(
            name=t.name,
            sn_kva=t.capacity_kva,
            vk_percent=t.vk_percent or 6.0,
            vkr_percent=t.vkr_percent or 1.4,
            hv_kv=t.hv_kv,
            lv_kv=t.lv_kv,
            lv_bus=t.lv_bus,
        )
        for t in Transformer.objects.order_by("pk")
    ]
    if not trafos:
        return None
    lines = [
        LineSpec(
            name=ln.name,
            from_bus=ln.from_bus,
            to_bus=ln.to_bus,
            length_km=ln.length_km,
            std_type=ln.std_type,
            r_ohm_per_km=ln.r_ohm_per_km,
            x_ohm_per_km=ln.x_ohm_per_km,
            c_nf_per_km=ln.c_nf_per_km,
            max_i_ka=ln.max_i_ka,
        )
        for ln in GridLine.objects.order_by("pk")
    ]
    sites = [
        SiteSpec(code=code, transformer=trafo, bus=bus)
        for code, trafo, bus in ConnectionPoint.objects.order_by("pk").values_list(
            "code", "transformer__name", "bus_name"
        )
    ]
    model = build_grid(trafos, lines, sites)
    _MODEL_CACHE.clear()
    _MODEL_CACHE[key] = model
    return model


def measured_site_power_w(*, interval_start: datetime) -> dict[str, float]:
    """Net active power per site (import − export, W) from validated meter data."""
    from apps.meters.selectors import member_interval_energy

    cps = dict(ConnectionPoint.objects.values_list("member_id", "code"))
    data = member_interval_energy(
        member_ids=list(cps), start=interval_start, end=interval_start + INTERVAL
    )
    return {cps[m]: (v.import_wh - v.export_wh) * WH_TO_W for (m, _), v in data.items()}


def forecast_site_power_w(*, start: datetime, intervals: int) -> list[dict[str, float]]:
    """Per interval, per-site net power (W) from the transformer forecasts (load − PV), shared
    among the transformer's sites by contracted power."""
    by_trafo: dict[int, list[tuple[str, int]]] = {}
    for tid, code, power in ConnectionPoint.objects.values_list(
        "transformer_id", "code", "contracted_power_w"
    ):
        by_trafo.setdefault(tid, []).append((code, power))
    out: list[dict[str, float]] = [{} for _ in range(intervals)]
    for tid, sites in by_trafo.items():
        load, _ = forecast_values(
            series_key=f"transformer:{tid}:load", start=start, intervals=intervals
        )
        pv, _ = forecast_values(
            series_key=f"transformer:{tid}:pv", start=start, intervals=intervals
        )
        net_w = (load - pv) * WH_TO_W
        total = sum(p for _, p in sites) or 1
        for i in range(intervals):
            for code, power in sites:
                out[i][code] = float(net_w[i]) * power / total
    return out


@transaction.atomic
def stability_assess(
    *, interval_start: datetime, source: str, site_power_w: dict[str, float], actor: Actor = None
) -> StabilityAssessment | None:
    interval_start = floor_interval(ensure_utc(interval_start))
    model = grid_model()
    if model is None:
        return None
    result = run_state(model, site_power_w)
    assessment, _ = StabilityAssessment.objects.update_or_create(
        interval_start=interval_start,
        source=source,
        defaults={
            "score": result.score,
            "max_loading_percent": result.max_loading_percent if result.converged else 999.0,
            "min_vm_pu": result.min_vm_pu if result.converged else 0.0,
            "max_vm_pu": result.max_vm_pu if result.converged else 0.0,
            "converged": result.converged,
            "transformers": result.transformers,
            "violations": result.violations,
            "bus_voltages": result.bus_voltages,
        },
    )
    when = "forecast for" if source == StateSource.FORECAST else "measured at"
    for v in result.violations:
        kind = v["kind"]
        unit = "%" if "overload" in kind else "pu"
        GridAlert.objects.get_or_create(
            kind=kind,
            source=source,
            interval_start=interval_start,
            subject=v["subject"][:100],
            defaults={
                "value": v["value"],
                "limit": v["limit"],
                "message": (
                    f"{GridAlert.Kind(kind).label}: {v['subject']} at {v['value']} {unit} "
                    f"(limit {v['limit']} {unit}) {when} {interval_start:%Y-%m-%d %H:%M} UTC"
                )[:300],
            },
        )
    if source == StateSource.MEASURED and interval_start.minute == 0:
        _record_on_chain(assessment, actor)
    if source == StateSource.MEASURED:
        data = {
            "interval_start": interval_start.isoformat(),
            "score": result.score,
            "transformers": result.transformers,
        }
        transaction.on_commit(
            lambda: realtime.broadcast(realtime.STAFF_GROUP, {"type": "grid.update", "data": data})
        )
    return assessment


def _record_on_chain(assessment: StabilityAssessment, actor: Actor) -> None:
    digest = hashlib.sha256(
        json.dumps(
            {
                "t": assessment.transformers,
                "v": assessment.violations,
                "min": assessment.min_vm_pu,
                "max": assessment.max_vm_pu,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    key = f"grid:stability:{int(assessment.interval_start.timestamp())}"
    if chain_intent_exists(idempotency_key=key):
        # The interval's first measured assessment is the one on record: a re-assessment (more
        # readings arrived, the demo's extras ran) keeps its own row here but is not re-sent.
        return
    chain_intent_submit(
        intent="stability_record",
        payload={
            "interval_start": int(assessment.interval_start.timestamp()),
            "score_bp": int(round(assessment.score * 100)),
            "data_hash": "0x" + digest,
        },
        idempotency_key=key,
        actor=actor,
    )


def stability_assess_measured(*, interval_start: datetime) -> StabilityAssessment | None:
    interval_start = floor_interval(ensure_utc(interval_start))
    power = measured_site_power_w(interval_start=interval_start)
    if not power:
        return None
    return stability_assess(
        interval_start=interval_start, source=StateSource.MEASURED, site_power_w=power
    )


def stability_assess_forecast(*, day_start: datetime) -> dict:
    """Run the power flow for every interval of a forecast day; count alerts raised."""
    day_start = floor_interval(ensure_utc(day_start), timedelta(days=1))
    scores = []
    intervals = int(timedelta(days=1) / INTERVAL)
    states = forecast_site_power_w(start=day_start, intervals=intervals)
    for i in range(intervals):
        a = stability_assess(
            interval_start=day_start + i * INTERVAL,
            source=StateSource.FORECAST,
            site_power_w=states[i],
        )
        if a is not None:
            scores.append(a.score)
    alerts = GridAlert.objects.filter(
        source=StateSource.FORECAST,
        interval_start__gte=day_start,
        interval_start__lt=day_start + timedelta(days=1),
    ).count()
    if alerts:
        audit_log_write(
            event=AuditEvent.STABILITY_ALERTS_RAISED,
            target_type="grid.day",
            target_id=day_start.date().isoformat(),
            details={"alerts": alerts, "min_score": min(scores) if scores else None},
        )
    return {
        "intervals": len(scores),
        "min_score": min(scores) if scores else None,
        "alerts": alerts,
    }
