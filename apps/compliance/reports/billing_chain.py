"""Billing ↔ chain reconciliation: per member, the P2P amounts billed for the months in the period
(regular invoices, less their credit notes, plus the rectifying invoices that replace them)
against the money balance changes the chain applied in the netted settlement batches that carried
those invoices' settlement lines, with every difference named.

The bridge, per member (amounts the member pays are positive):

    on-chain charge = billed P2P            (regular invoices + credit notes + rectifying invoices)
                    + credited, not re-billed (a credit note annulled the P2P of an invoice and
                                             no rectifying invoice replaces it: the chain charged
                                             what the books took back)
                    − invoice rounding      (each invoice line rounded to cents)
                    + grid settled on chain (grid import/export of the same lines: the batch nets
                                             them at market prices, the invoice bills them at the
                                             supply tariff, not as P2P)
                    − not yet on chain      (lines of a run whose batch is not applied yet, and
                                             adjustments waiting for the next batch)
                    + other months in batch (the same batches carry lines billed on other
                                             invoices: adjustments of earlier months, later lines)
                    + chain rounding        (each batch rounds the member's net to minor units)
                    + unexplained

Rounding is explained only within its bound (half a cent per P2P invoice line, half a minor unit
per batch); anything beyond, and any on-chain delta that differs from what the settlement lines
say the batch carried, is **unexplained**: a correct ledger shows zero there.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from apps.billing.selectors import BilledP2P, p2p_billed
from apps.chain.selectors import chain_intents, settlements_applied
from apps.compliance.reports.document import ReportDocument, Table
from apps.core.exceptions import ApplicationError
from apps.market.selectors import batch_lines, minor_units, settlement_batches

KIND = "billing_chain_reconciliation"
Q6 = Decimal("0.000001")
HALF_CENT = Decimal("0.005")


def _months(start: datetime, end: datetime) -> tuple[date, date] | None:
    """(first, last) first days of the months that begin in [start, end) (by date)."""
    d0, d1 = start.date(), end.date()
    first = d0 if d0.day == 1 else date(d0.year + d0.month // 12, d0.month % 12 + 1, 1)
    if end.time() != datetime.min.time():
        d1 = date.fromordinal(d1.toordinal() + 1)
    if first >= d1:
        return None
    last = first
    while True:
        nxt = date(last.year + last.month // 12, last.month % 12 + 1, 1)
        if nxt >= d1:
            return first, last
        last = nxt


def _invoice_label(b: BilledP2P) -> str:
    """'2026-06:F2026-000001' and its corrections: '(annulled by A…, replaced by R…)'."""
    label = f"{b.period:%Y-%m}:{b.number or 'draft ' + str(b.invoice_id)}"
    fixes = [f"annulled by {n}" for n in b.credit_notes] + [
        f"replaced by {n}" for n in b.rectifying
    ]
    return f"{label} ({', '.join(fixes)})" if fixes else label


def _q(value: Decimal) -> Decimal:
    return Decimal(value).quantize(Q6) + 0


def build_billing_chain_reconciliation(
    *, start: datetime, end: datetime, member_id: int | None = None, **_: Any
) -> ReportDocument:
    months = _months(start, end)
    billed = p2p_billed(first=months[0], last=months[1], member_id=member_id) if months else []
    if not billed:
        raise ApplicationError(
            f"No invoices of months starting between {start:%Y-%m-%d} and {end:%Y-%m-%d}: "
            "choose a period with billed months.",
            {"kind": KIND, "start": start.astimezone(UTC).isoformat()},
        )
    unit = Decimal(minor_units())
    half_minor = Decimal(1) / unit / 2
    by_member: dict[int, list[BilledP2P]] = defaultdict(list)
    for row in billed:
        by_member[row.member_id].append(row)
    lines = batch_lines(statement_ids=[b.statement_id for b in billed if b.statement_id])
    run_ids = sorted({x.batch for x in lines if x.batch is not None})
    batches = settlement_batches(run_ids=run_ids)
    applied = settlements_applied(settlement_ids=run_ids)

    # (member, batch) → [own exact, other exact, own lines, own adjustments]
    per_batch: dict[tuple[int, int | None], list[Any]] = defaultdict(
        lambda: [Decimal(0), Decimal(0), 0, 0]
    )
    own_p2p: dict[int, Decimal] = defaultdict(Decimal)
    own_grid: dict[int, Decimal] = defaultdict(Decimal)
    for x in lines:
        acc = per_batch[(x.member_id, x.batch)]
        if x.on_statements:
            acc[0] += x.p2p + x.grid
            acc[2] += x.lines
            acc[3] += x.adjustments
            own_p2p[x.member_id] += x.p2p
            own_grid[x.member_id] += x.grid
        else:
            acc[1] += x.p2p + x.grid

    batch_table = Table(
        "batches",
        [
            "member",
            "batch_run",
            "state",
            "tx_hash",
            "lines_on_invoices",
            "adjustments_on_invoices",
            "amount_on_invoices",
            "amount_billed_elsewhere",
            "delta_minor_recorded",
            "delta_minor_on_chain",
            "chain_rounding",
            "unexplained",
        ],
    )
    numbers = {b.member_id: b.membership_number for b in billed}
    member_rows: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for (member, run), (own, other, count, adjustments) in sorted(
        per_batch.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or 0)
    ):
        acc = member_rows[member]
        record = batches.get(run) if run is not None else None
        event = applied.get(run) if run is not None else None
        recorded = (record.deltas.get(member) if record else None) or {}
        if event is None:
            acc["not_yet"] += own
            state = (
                "adjustments awaiting the next batch"
                if run is None
                else "batch not applied on chain yet"
            )
            on_chain_minor = None
            rounding = unexplained = Decimal(0)
        else:
            address = str(recorded.get("address", "")).lower()
            on_chain_minor = event.deltas.get(address, 0) if address else 0
            charge = -Decimal(on_chain_minor) / unit
            diff = charge - (own + other)
            rounding = diff if abs(diff) <= half_minor else Decimal(0)
            unexplained = diff - rounding
            acc["other"] += other
            acc["chain_rounding"] += rounding
            acc["unexplained"] += unexplained
            acc["on_chain"] += charge
            state = "applied on chain"
        batch_table.rows.append(
            [
                numbers[member],
                run,
                state,
                event.tx_hash if event else "",
                count,
                adjustments,
                _q(own),
                _q(other) if event else None,
                recorded.get("delta_minor"),
                on_chain_minor,
                _q(rounding),
                _q(unexplained),
            ]
        )

    member_table = Table(
        "members",
        [
            "member",
            "invoices",
            "billed_p2p",
            "credited_not_rebilled",
            "invoice_rounding",
            "grid_settled_on_chain",
            "not_yet_on_chain",
            "billed_elsewhere_same_batches",
            "chain_rounding",
            "on_chain_charge",
            "unexplained",
            "explanation",
        ],
    )
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for member, invoices in sorted(by_member.items(), key=lambda kv: numbers[kv[0]]):
        acc = member_rows[member]
        billed_p2p = sum((b.billed for b in invoices), Decimal(0))
        credited_only = -sum((b.credited for b in invoices if not b.rectifying), Decimal(0))
        p2p_lines = sum(b.p2p_lines for b in invoices)
        raw = billed_p2p + credited_only - own_p2p[member]
        invoice_rounding = raw if abs(raw) <= HALF_CENT * p2p_lines else Decimal(0)
        unexplained = acc["unexplained"] - (raw - invoice_rounding)
        grid = own_grid[member]
        items = [
            ("credited by credit note, not re-billed", credited_only),
            ("invoice rounding", invoice_rounding),
            ("grid supply and export settled on chain, billed at the supply tariff", grid),
            ("not on chain yet", -acc["not_yet"]),
            ("lines billed on other invoices in the same batches", acc["other"]),
            ("rounding to minor units per batch", acc["chain_rounding"]),
        ]
        explanation = "; ".join(f"{label} {_q(v)}" for label, v in items if v)
        if unexplained:
            explanation = f"UNEXPLAINED {_q(unexplained)}" + (
                f"; {explanation}" if explanation else ""
            )
        member_table.rows.append(
            [
                numbers[member],
                " ".join(_invoice_label(b) for b in invoices),
                _q(billed_p2p),
                _q(credited_only),
                _q(-invoice_rounding),
                _q(grid),
                _q(-acc["not_yet"]),
                _q(acc["other"]),
                _q(acc["chain_rounding"]),
                _q(acc["on_chain"]),
                _q(unexplained),
                explanation or "equal",
            ]
        )
        totals["billed"] += billed_p2p
        totals["on_chain"] += acc["on_chain"]
        totals["unexplained"] += abs(unexplained)
        totals["not_yet"] += acc["not_yet"]

    intents = [batches[r].chain_intent_id for r in run_ids if r in batches]
    anchors: list[dict[str, Any]] = [
        {"type": "settlement_batch", "run": r, "trades_root": batches[r].trades_root}
        for r in run_ids
        if r in batches and batches[r].trades_root
    ] + [
        {"type": "settlement_tx", "intent": i.id, "intent_name": i.intent, "tx_hash": i.tx_hash}
        for i in chain_intents(intent_ids=[i for i in intents if i])
    ]
    return ReportDocument(
        kind=KIND,
        title="Billing and chain reconciliation",
        params={"member_id": member_id} if member_id else {},
        tables=[member_table, batch_table],
        totals=[
            ("Members", len(by_member)),
            ("P2P billed", _q(totals["billed"])),
            ("On-chain charge", _q(totals["on_chain"])),
            ("Not on chain yet", _q(totals["not_yet"])),
            ("Unexplained difference", _q(totals["unexplained"])),
        ],
        anchors=anchors,
        notes=[
            "Per member: on-chain charge = billed P2P + credited, not re-billed + invoice "
            "rounding + grid settled on chain + not on chain yet + lines billed on other "
            "invoices in the same batches + chain rounding + unexplained (columns with their "
            "signs).",
            "Rounding counts as explained only within half a cent per P2P invoice line and half "
            "a minor unit per batch; anything more is unexplained.",
            "Billed P2P is what the member is billed in the end: each regular invoice, plus its "
            "credit notes (opposite amounts) and the rectifying invoices that replace it (drafts "
            "included); a credit note without a rectifying invoice is named, not unexplained.",
        ],
    )
