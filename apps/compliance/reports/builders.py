"""Report builders: read the database (read-only) into a ReportDocument.

Every builder takes the period [start, end) (aware UTC) plus optional filters, is deterministic for
a given database state (so the content hash shown on a page matches the downloaded file and a
re-build with ``verify_report --against-db`` matches an untampered file), and raises
ApplicationError when the period has no data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from apps.audit.selectors import audit_log_for_period, audit_log_max_id
from apps.chain.selectors import chain_intents, meter_anchors_between
from apps.compliance.reports.billing_chain import build_billing_chain_reconciliation
from apps.compliance.reports.document import ReportDocument, Table
from apps.compliance.reports.spill import SpilledRows
from apps.core.exceptions import ApplicationError
from apps.incentives import conf
from apps.incentives.models import Certificate
from apps.incentives.selectors import (
    carbon_by_member_iter,
    certificates_transferred_wh_by_settlement,
    claimed_certificate_chain_intent_ids,
    registry_certificates,
)
from apps.market.selectors import settlement_runs_reconciliation
from apps.meters.selectors import interval_readings_iter, meter_quality_counts, meter_registry

# --- helpers ---------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def _months(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    out = []
    cur = start
    while cur < end:
        nxt = (cur.replace(day=1) + timedelta(days=32)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        out.append((cur, min(nxt, end)))
        cur = nxt
    return out


def _no_data(kind: str, start: datetime, end: datetime) -> ApplicationError:
    return ApplicationError(
        f"No data for the {kind.replace('_', ' ')} report between {start:%Y-%m-%d %H:%M} and "
        f"{end:%Y-%m-%d %H:%M} UTC: choose a period with data.",
        {"kind": kind, "start": _iso(start), "end": _iso(end)},
    )


def meter_anchors(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The MeterOracle anchors (Merkle roots of validated readings) of intervals in [start, end)."""
    return [
        {
            "type": "meter_anchor",
            "interval_start": _iso(a.interval_start),
            "version": a.version,
            "root": a.root,
            "leaf_count": a.leaf_count,
            "tx_hash": a.tx_hash,
            "intent": a.intent_id,
        }
        for a in meter_anchors_between(start=start, end=end)
    ]


def intent_anchors(kind: str, intent_ids: list[int]) -> list[dict[str, Any]]:
    return [
        {"type": kind, "intent": r.id, "intent_name": r.intent, "tx_hash": r.tx_hash}
        for r in chain_intents(intent_ids=intent_ids)
    ]


def _pct(part: int, whole: int) -> Decimal:
    if not whole:
        return Decimal("0.00")
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"))


# --- builders --------------------------------------------------------------------------------


def build_settlement_reconciliation(*, start: datetime, end: datetime, **_: Any) -> ReportDocument:
    """Per settlement run: trades vs settlement lines vs certificates moved, money totals, and
    the run's on-chain batch (trades Merkle root, transaction)."""
    runs = settlement_runs_reconciliation(start=start, end=end)
    if not runs:
        raise _no_data("settlement_reconciliation", start, end)
    certs = certificates_transferred_wh_by_settlement(settlement_refs=[str(r.run_id) for r in runs])
    table = Table(
        "settlement_runs",
        [
            "run",
            "period_start",
            "period_end",
            "status",
            "trades",
            "traded_wh",
            "lines_bought_wh",
            "lines_sold_wh",
            "energy_reconciled",
            "certificates_transferred_wh",
            "members_pay",
            "members_receive",
            "grid_import_cost",
            "grid_export_revenue",
            "network_fees",
            "lines_net_amount",
            "trades_root",
            "chain_intent",
        ],
    )
    totals = defaultdict(Decimal)
    for run in runs:
        table.rows.append(
            [
                run.run_id,
                _iso(run.period_start),
                _iso(run.period_end),
                run.status,
                run.trade_count,
                run.traded_wh,
                run.lines_bought_wh,
                run.lines_sold_wh,
                "yes" if run.traded_wh == run.lines_bought_wh else "NO",
                certs.get(str(run.run_id), 0),
                run.members_pay,
                run.members_receive,
                run.grid_import_cost,
                run.grid_export_revenue,
                run.network_fees,
                run.lines_net_amount,
                run.trades_root,
                run.chain_intent_id,
            ]
        )
        totals["traded_wh"] += run.traded_wh
        totals["members_pay"] += run.members_pay
        totals["members_receive"] += run.members_receive
        totals["lines_net_amount"] += run.lines_net_amount
    anchors = [
        {"type": "settlement_batch", "run": r.run_id, "trades_root": r.trades_root}
        for r in runs
        if r.trades_root
    ] + intent_anchors("settlement_tx", [r.chain_intent_id for r in runs if r.chain_intent_id])
    return ReportDocument(
        kind="settlement_reconciliation",
        title="Settlement reconciliation",
        params={},
        tables=[table],
        totals=[
            ("Settlement runs", len(runs)),
            ("Traded energy (Wh)", int(totals["traded_wh"])),
            ("Members pay", totals["members_pay"]),
            ("Members receive", totals["members_receive"]),
            ("Net of settlement lines", totals["lines_net_amount"]),
        ],
        anchors=anchors,
    )


def build_data_quality(*, start: datetime, end: datetime, **_: Any) -> ReportDocument:
    """Per meter and month: % of intervals edited, estimated and missing (ESPI quality codes)."""
    table = Table(
        "data_quality",
        [
            "month",
            "meter",
            "member",
            "expected_intervals",
            "present",
            "edited",
            "edited_pct",
            "estimated",
            "estimated_pct",
            "questionable",
            "missing",
            "missing_pct",
        ],
    )
    sums = defaultdict(int)
    meters = {m.pk: m for m in meter_registry()}
    for m_start, m_end in _months(start, end):
        counts = meter_quality_counts(start=m_start, end=m_end)
        for meter_id in sorted(meters):
            meter = meters[meter_id]
            active_from = max(m_start, meter.active_from)
            active_to = min(m_end, meter.active_to or m_end)
            seconds = max(0, int((active_to - active_from).total_seconds()))
            expected = seconds // meter.interval_seconds
            present, edited, estimated, questionable = counts.get(meter_id, (0, 0, 0, 0))
            if not expected and not present:
                continue
            missing = max(0, expected - present)
            table.rows.append(
                [
                    f"{m_start:%Y-%m}",
                    meter.serial,
                    meter.membership_number,
                    expected,
                    present,
                    edited,
                    _pct(edited, expected),
                    estimated,
                    _pct(estimated, expected),
                    questionable,
                    missing,
                    _pct(missing, expected),
                ]
            )
            for key, value in (
                ("expected", expected),
                ("present", present),
                ("edited", edited),
                ("estimated", estimated),
                ("missing", missing),
            ):
                sums[key] += value
    if not sums["present"]:
        raise _no_data("data_quality", start, end)
    return ReportDocument(
        kind="data_quality",
        title="Data-quality exceptions",
        params={},
        tables=[table],
        totals=[
            ("Expected intervals", sums["expected"]),
            ("Present intervals", sums["present"]),
            ("Edited intervals", sums["edited"]),
            ("Edited (%)", _pct(sums["edited"], sums["expected"])),
            ("Estimated intervals", sums["estimated"]),
            ("Estimated (%)", _pct(sums["estimated"], sums["expected"])),
            ("Missing intervals", sums["missing"]),
            ("Missing (%)", _pct(sums["missing"], sums["expected"])),
        ],
        anchors=meter_anchors(start, end),
        notes=[
            "Quality codes (Green Button / NAESB ESPI): 7 edited, 8 estimated (reference day), "
            "9 interpolated, 10 questionable. Expected intervals follow each meter's active "
            "period and interval length."
        ],
    )


def build_certificate_registry(*, start: datetime, end: datetime, **_: Any) -> ReportDocument:
    """Every certificate holding produced in the period, with its lineage and chain intent."""
    certs = list(registry_certificates(start=start, end=end))
    if not certs:
        raise _no_data("certificate_registry", start, end)
    table = Table(
        "certificates",
        [
            "id",
            "token_id",
            "range_start",
            "range_end",
            "wh",
            "status",
            "owner",
            "device",
            "energy_source",
            "production_start",
            "production_end",
            "country",
            "issuing_body",
            "market_zone",
            "support_received",
            "emission_factor_g_per_kwh",
            "beneficiary",
            "claimed_at",
            "parent",
            "trade",
            "chain_intent",
        ],
    )
    by_status: dict[str, int] = defaultdict(int)
    issued = 0
    for c in certs:
        table.rows.append(
            [
                c.pk,
                int(c.token_id),
                c.range_start,
                c.range_end,
                c.wh,
                c.status,
                c.owner.membership_number,
                c.device.serial,
                c.energy_source,
                _iso(c.production_start),
                _iso(c.production_end),
                c.country,
                c.issuing_body,
                c.market_zone,
                c.support_received,
                c.emission_factor,
                c.beneficiary,
                _iso(c.claimed_at),
                c.parent_id,
                c.trade_ref,
                c.chain_intent_ref,
            ]
        )
        by_status[c.status] += c.wh
        if c.parent_id is None:
            issued += c.wh
    intents = [int(c.chain_intent_ref) for c in certs if c.chain_intent_ref.isdigit()]
    return ReportDocument(
        kind="certificate_registry",
        title="Certificate registry",
        params={},
        tables=[table],
        totals=[
            ("Issued (Wh)", issued),
            ("Active (Wh)", by_status[Certificate.Status.ACTIVE]),
            ("Claimed (Wh)", by_status[Certificate.Status.CLAIMED]),
            ("Cancelled (Wh)", by_status[Certificate.Status.CANCELLED]),
            ("Holdings listed", len(certs)),
        ],
        anchors=intent_anchors("certificate_tx", intents) + meter_anchors(start, end),
        notes=[
            "A holding marked 'transferred' was split: its children (rows whose parent is it) "
            "carry the parts. Issued = sum of root holdings; active + claimed + cancelled leaves "
            "add up to issued."
        ],
    )


def build_carbon(
    *, start: datetime, end: datetime, member_id: int | None = None, **_: Any
) -> ReportDocument:
    """Scope 2 per member and for the cooperative per month, with the certificates used."""
    members_t = Table(
        "members",
        [
            "month",
            "member",
            "consumption_wh",
            "certificate_covered_wh",
            "uncovered_wh",
            "location_based_kg_co2e",
            "market_based_kg_co2e",
        ],
    )
    coop_t = Table(
        "cooperative",
        [
            "month",
            "members",
            "consumption_wh",
            "certificate_covered_wh",
            "location_based_kg_co2e",
            "market_based_kg_co2e",
        ],
    )
    certs_t = Table(
        "certificates_used",
        ["month", "member", "certificate", "production_hour", "claimed_wh", "used_wh"],
    )
    # Rows ∝ members × months and certificate uses (up to members × hours). One pass over the
    # member-hours (carbon_by_member_iter: server-side cursors, each member through the pure
    # engine on its own) gives the cooperative table (written first) and the totals, and spills
    # the members and certificate rows to temporary files that the hash and CSV passes read
    # back: the member-hour scan and the engine run once, memory holds one batch of rows.
    ids = [member_id] if member_id else None
    months = _months(start, end)
    grand = {"n": 0, "consumption": 0, "covered": 0, "location": Decimal(0), "market": Decimal(0)}
    member_rows, certificate_rows = SpilledRows(), SpilledRows()
    for m_start, m_end in months:
        month = f"{m_start:%Y-%m}"
        coop = {"n": 0, "c": 0, "cov": 0, "loc": Decimal(0), "mkt": Decimal(0)}
        for mc in carbon_by_member_iter(start=m_start, end=m_end, member_ids=ids):
            r = mc.result
            if not r.consumption_wh and not r.uses:
                continue
            member_rows.append(
                [
                    month,
                    mc.membership_number,
                    r.consumption_wh,
                    r.covered_wh,
                    r.uncovered_wh,
                    r.location_kg,
                    r.market_kg,
                ]
            )
            for use in r.uses:
                certificate_rows.append(
                    [
                        month,
                        mc.membership_number,
                        use.ref,
                        _iso(use.hour_start),
                        use.wh_claimed,
                        use.wh_used,
                    ]
                )
            coop["n"] += 1
            coop["c"] += r.consumption_wh
            coop["cov"] += r.covered_wh
            coop["loc"] += r.location_kg
            coop["mkt"] += r.market_kg
        if coop["n"]:
            coop_t.rows.append([month, coop["n"], coop["c"], coop["cov"], coop["loc"], coop["mkt"]])
            grand["n"] += coop["n"]
            grand["consumption"] += coop["c"]
            grand["covered"] += coop["cov"]
            grand["location"] += coop["loc"]
            grand["market"] += coop["mkt"]
    if not grand["n"]:
        raise _no_data("carbon", start, end)
    uses = len(certificate_rows)
    members_t.source = member_rows.rows
    certs_t.source = certificate_rows.rows
    # Every certificate claimed for an hour of the period (of the member) is used — counted
    # even when its hour had no consumption — so their intents are read in SQL, not collected.
    claim_intents = claimed_certificate_chain_intent_ids(start=start, end=end, member_ids=ids)
    return ReportDocument(
        kind="carbon",
        title="Scope 2 emissions (location- and market-based)",
        params={"member_id": member_id} if member_id else {},
        tables=[coop_t, members_t, certs_t],
        totals=[
            ("Consumption (Wh)", grand["consumption"]),
            ("Covered by claimed certificates (Wh)", grand["covered"]),
            ("Location-based (kg CO2e)", grand["location"]),
            ("Market-based (kg CO2e)", grand["market"]),
            ("Certificates used", uses),
        ],
        anchors=intent_anchors("certificate_claim_tx", claim_intents) + meter_anchors(start, end),
        notes=[
            "GHG Protocol Scope 2: location-based = consumption × grid-average factor of "
            f"{conf.market_zone()}; market-based = consumption covered by certificates claimed for "
            "the same hour × their factor, the rest × the residual-mix factor. Factors are "
            "configured per market zone and period (admin → Emission factors)."
        ],
    )


def build_interval_data(
    *, start: datetime, end: datetime, member_id: int | None = None, **_: Any
) -> ReportDocument:
    """Every current validated interval reading in the period (optionally one member's).

    The table is streamed (rows ∝ meters × intervals: a month of 10,000 meters is 28.8 M rows):
    its rows come from a server-side cursor on every pass and are never held. Building makes
    the first pass — content hash, row count and totals, in constant memory — so that the
    file's header can declare the hash and the seal can sign it before the data is written;
    the download is the second pass (apps.compliance.reports.document.iter_render_csv)."""
    sums = {"n": 0, "import": 0, "export": 0}

    def rows() -> Iterator[list[Any]]:
        sums.update({"n": 0, "import": 0, "export": 0})
        for serial, number, t, secs, i, e, q, v, signed in interval_readings_iter(
            start=start, end=end, member_id=member_id
        ):
            sums["n"] += 1
            sums["import"] += i
            sums["export"] += e
            yield [serial, number, _iso(t), secs, i, e, q, v, "yes" if signed else "no"]

    table = Table(
        "intervals",
        [
            "meter",
            "member",
            "interval_start",
            "interval_seconds",
            "import_wh",
            "export_wh",
            "quality",
            "version",
            "device_signed",
        ],
        source=rows,
    )
    doc = ReportDocument(
        kind="interval_data",
        title="Interval data export",
        params={"member_id": member_id} if member_id else {},
        tables=[table],
        notes=[
            "Each device-signed reading can be proven against its anchor with "
            "`python manage.py verify_reading --meter SERIAL --interval START`."
        ],
    )
    doc.content_hash  # noqa: B018 - the first streaming pass: hash, row count, totals
    if not sums["n"]:
        raise _no_data("interval_data", start, end)
    doc.totals = [
        ("Intervals", sums["n"]),
        ("Import (Wh)", sums["import"]),
        ("Export (Wh)", sums["export"]),
    ]
    doc.anchors = meter_anchors(start, end)
    return doc


def build_audit_log(
    *, start: datetime, end: datetime, max_id: int | None = None, **_: Any
) -> ReportDocument:
    """Audit rows of the period up to `max_id` — pinned at first build, so that the report
    can be rebuilt identically later although the log keeps growing (exports are logged too)."""
    if max_id is None:
        max_id = audit_log_max_id(start=start, end=end)
    rows = audit_log_for_period(start=start, end=end, max_id=max_id)
    if not rows:
        raise _no_data("audit_log", start, end)
    table = Table(
        "audit_log",
        ["id", "created_at", "event", "actor", "target_type", "target_id", "details"],
    )
    events: dict[str, int] = defaultdict(int)
    for r in rows:
        table.rows.append(
            [r.pk, _iso(r.created_at), r.event, r.actor_label, r.target_type, r.target_id,
             r.details]
        )  # fmt: skip
        events[r.event.split(".", 1)[0]] += 1
    return ReportDocument(
        kind="audit_log",
        title="Audit-log export",
        params={"max_id": max_id},
        tables=[table],
        totals=[("Entries", len(rows))] + [(f"{k} events", v) for k, v in sorted(events.items())],
        anchors=[],
        notes=["The audit log is append-only; it is not anchored on chain."],
    )


@dataclass(frozen=True)
class ReportKind:
    slug: str
    title: str
    description: str
    build: Callable[..., ReportDocument]
    member_filter: bool = False
    pinned: tuple[str, ...] = ()  # integer parameters fixed at first build (see audit_log)


REPORTS: dict[str, ReportKind] = {
    k.slug: k
    for k in (
        ReportKind(
            "settlement_reconciliation",
            "Settlement reconciliation",
            "Per settlement run: trades vs settlement lines vs certificates moved, money totals, "
            "the batch's trades root and transaction.",
            build_settlement_reconciliation,
        ),
        ReportKind(
            "billing_chain_reconciliation",
            "Billing and chain reconciliation",
            "Per member: P2P amounts billed vs the balance changes the chain applied in the "
            "netted settlement batches, every difference named; unexplained should be zero.",
            build_billing_chain_reconciliation,
            member_filter=True,
        ),
        ReportKind(
            "data_quality",
            "Data-quality exceptions",
            "Per meter and month: % of intervals edited, estimated and missing.",
            build_data_quality,
        ),
        ReportKind(
            "certificate_registry",
            "Certificate registry",
            "Every certificate holding with its EnergyTag fields, status and lineage.",
            build_certificate_registry,
        ),
        ReportKind(
            "carbon",
            "Carbon (Scope 2)",
            "Location- and market-based emissions per member and for the cooperative per month, "
            "with the certificates used.",
            build_carbon,
            member_filter=True,
        ),
        ReportKind(
            "interval_data",
            "Interval data",
            "Every validated interval reading with its quality code and version.",
            build_interval_data,
            member_filter=True,
        ),
        ReportKind(
            "audit_log",
            "Audit log",
            "Every audited write in the period.",
            build_audit_log,
            pinned=("max_id",),
        ),
    )
}
