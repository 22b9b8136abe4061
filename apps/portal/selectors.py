"""Reads of the portal: the other apps' selectors shaped for the portal's pages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.core.cache import cache

from apps.accounts.models import Member
from apps.billing.selectors import member_site_contracts
from apps.grid.selectors import member_sites
from apps.meters.selectors import member_dashboard_data, member_site_energy

# Set (with a timeout, in case the loader is killed) by the demo loader while the apps' demo
# steps run in the background after `make run` answers; every portal page then says so.
DEMO_PREPARING_CACHE_KEY = "demo:preparing"
DEMO_PREPARING_TIMEOUT_S = 30 * 60


def demo_preparing() -> bool:
    """Whether the demo's extras (market day, forecasts, certificates, invoices…) are loading."""
    return bool(cache.get(DEMO_PREPARING_CACHE_KEY))


def _kwh(wh: int) -> Decimal:
    return (Decimal(wh) / 1000).quantize(Decimal("0.01"))


def _points(series: dict) -> list[dict]:
    return [
        {"t": t, "import_wh": i, "export_wh": e}
        for t, i, e in zip(series["labels"], series["import_wh"], series["export_wh"], strict=True)
    ]


def member_dashboard(*, member: Member, now: datetime, version: str | None = None) -> dict:
    """The member's own readings (apps.meters.selectors.member_dashboard_data, cached under
    `version` when given) shaped for the portal dashboard: kWh totals, Chart.js points, the
    latest reading."""
    raw = member_dashboard_data(member=member, now=now, version=version)
    totals = raw["totals"]
    latest = raw.get("latest")
    if latest:
        latest = {**latest, "interval_start": datetime.fromisoformat(latest["interval_start"])}
    return {
        "has_readings": bool(raw["week"]["labels"] or raw["today"]["labels"]),
        "today": {
            "import_kwh": _kwh(totals["today_import_wh"]),
            "export_kwh": _kwh(totals["today_export_wh"]),
        },
        "week": {
            "import_kwh": _kwh(totals["week_import_wh"]),
            "export_kwh": _kwh(totals["week_export_wh"]),
        },
        "latest": latest,
        "time_zone": raw.get("time_zone", ""),
        "chart": {"today": _points(raw["today"]), "week": _points(raw["week"])},
    }


def member_sites_overview(*, member: Member, now: datetime, version: str | None = None) -> dict:
    """Each of the member's sites with its contract and its energy today and over the last
    7 days (kWh; cached under `version` when given), and the total over all sites."""
    energy = member_site_energy(member=member, now=now, version=version)
    contracts = member_site_contracts(member=member)
    zero = {"today_import_wh": 0, "today_export_wh": 0, "week_import_wh": 0, "week_export_wh": 0}
    rows = []
    for site in member_sites(member=member):
        wh = energy.get(site.pk, zero)
        current = [c for c in contracts.get(site.pk, []) if c.end is None or c.end >= now.date()]
        rows.append(
            {
                "code": site.code,
                "address": ", ".join(p for p in (site.street, site.postal_code, site.city) if p),
                "contract": current[0].reference if current else "",
                "tariff": current[0].tariff.name if current else "",
                **{key.replace("_wh", "_kwh"): _kwh(value) for key, value in wh.items()},
            }
        )
    total = {key.replace("_wh", "_kwh"): _kwh(sum(v[key] for v in energy.values())) for key in zero}
    return {"sites": rows, "total": total}
