"""Settlement from metered actuals, netted on-chain anchoring and late corrections.

A run settles [period_start, period_end): open → cleared → metered → settled → anchored.
Each transition checks the current state first, so a retried task cannot apply twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.selectors import actor_user
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.intervals import iter_intervals
from apps.core.state import check_transition
from apps.core.types import Actor
from apps.market import conf, pricing
from apps.market.lock_objects import settlement_run_lock
from apps.market.models import ClearingResult, Mechanism, SettlementLine, SettlementRun, Trade
from apps.market.signals import settlement_run_settled

if TYPE_CHECKING:
    from apps.chain.merkle import MerkleTree

logger = logging.getLogger(__name__)
K = Decimal(1000)
Q6 = Decimal("0.000001")
EMPTY_ROOT_TAG = b"energysphere:settlement-without-trades"


def _q(value: Decimal) -> Decimal:
    return value.quantize(Q6, rounding=ROUND_HALF_EVEN)


def _members_to_settle(run: SettlementRun) -> list[int]:
    from apps.meters.selectors import meter_occupant_ids

    # every member who occupied a meter in the period: after a move both occupants, each for
    # their own intervals (member_interval_energy reads within each one's occupancy)
    ids = meter_occupant_ids(start=run.period_start, end=run.period_end)
    trades = Trade.objects.filter(clearing__run=run)
    ids.update(trades.values_list("seller_id", flat=True))
    ids.update(trades.values_list("buyer_id", flat=True))
    return sorted(ids)


@dataclass(slots=True)
class _Computed:
    lines: dict[tuple[int, datetime], dict[str, Any]]
    members_pay: Decimal
    members_receive: Decimal
    grid_import_cost: Decimal
    grid_export_revenue: Decimal
    network_fees: Decimal
    missing: list[tuple[int, datetime]]


def compute_lines(*, run: SettlementRun) -> _Computed:
    """Each member's delivered vs traded energy per interval, priced (exact Decimals)."""
    from apps.market.selectors import tariff_at
    from apps.meters.selectors import member_interval_energy

    member_ids = _members_to_settle(run)
    energy = member_interval_energy(
        member_ids=member_ids, start=run.period_start, end=run.period_end
    )
    clearings = {
        c.interval_start: c for c in ClearingResult.objects.filter(run=run).select_related("tariff")
    }
    trades_by: dict[tuple[int, datetime], list[tuple[str, Trade]]] = defaultdict(list)
    for t in Trade.objects.filter(clearing__run=run).order_by("id"):
        trades_by[(t.buyer_id, t.interval_start)].append(("buy", t))
        trades_by[(t.seller_id, t.interval_start)].append(("sell", t))
    lines: dict[tuple[int, datetime], dict[str, Any]] = {}
    missing: list[tuple[int, datetime]] = []
    totals: defaultdict[str, Decimal] = defaultdict(lambda: Decimal(0))
    with localcontext() as ctx:
        ctx.prec = 40
        for start in iter_intervals(run.period_start, run.period_end):
            clearing = clearings.get(start)
            tariff = clearing.tariff if clearing else tariff_at(at=start)
            retail, feed_in = tariff.retail_price, tariff.feed_in_price
            mechanism = clearing.mechanism if clearing else run.mechanism
            positions = {}
            for m in member_ids:
                e = energy.get((m, start))
                if e is None:
                    if trades_by.get((m, start)):
                        missing.append((m, start))
                    continue
                positions[m] = (e.import_wh, e.export_wh)
            need_total = sum(max(i - x, 0) for i, x in positions.values())
            surplus_total = sum(max(x - i, 0) for i, x in positions.values())
            community = None
            if mechanism in (Mechanism.SDR, Mechanism.MMR):
                community = pricing.community_prices(
                    mechanism,
                    supply_wh=surplus_total,
                    demand_wh=need_total,
                    retail=retail,
                    feed_in=feed_in,
                )
                totals["grid_import_cost"] += retail * max(need_total - surplus_total, 0) / K
                totals["grid_export_revenue"] += feed_in * max(surplus_total - need_total, 0) / K
            for m, (imp, exp) in positions.items():
                need, surplus = max(imp - exp, 0), max(exp - imp, 0)
                bought = sold = loss = 0
                purchase = sale = fee = Decimal(0)
                for kind, t in trades_by.get((m, start), ()):
                    if kind == "buy":
                        bought += t.wh_delivered
                        loss += t.loss_wh
                        purchase += t.price * t.wh_from_seller / K
                        fee += t.fee_per_kwh * t.wh_from_seller / K
                    else:
                        sold += t.wh_from_seller
                        sale -= t.price * t.wh_from_seller / K
                grid_in = max(need + sold - surplus - bought, 0)
                grid_out = max(surplus + bought - need - sold, 0)
                if community is None:
                    grid_import, grid_export = retail * grid_in / K, -feed_in * grid_out / K
                    totals["grid_import_cost"] += grid_import
                    totals["grid_export_revenue"] -= grid_export
                else:
                    # The member's whole position at the community prices; the cooperative
                    # settles the community's net position with the grid (run totals).
                    purchase = community.buyer_price * need / K
                    sale = -community.seller_price * surplus / K
                    fee = Decimal(0)
                    grid_import = grid_export = Decimal(0)
                totals["members_pay"] += purchase + fee + grid_import
                totals["members_receive"] -= sale + grid_export
                totals["network_fees"] += fee
                lines[(m, start)] = {
                    "import_wh": imp,
                    "export_wh": exp,
                    "bought_wh": bought,
                    "sold_wh": sold,
                    "grid_import_wh": grid_in,
                    "grid_export_wh": grid_out,
                    "loss_wh": loss,
                    "p2p_purchase": purchase,
                    "p2p_sale": sale,
                    "network_fee": fee,
                    "grid_import": grid_import,
                    "grid_export": grid_export,
                    "grid_only_charge": retail * need / K,
                    "grid_only_credit": -feed_in * surplus / K,
                }
    return _Computed(
        lines=lines,
        members_pay=totals["members_pay"],
        members_receive=totals["members_receive"],
        grid_import_cost=totals["grid_import_cost"],
        grid_export_revenue=totals["grid_export_revenue"],
        network_fees=totals["network_fees"],
        missing=missing,
    )


def budget_imbalance(c: _Computed) -> Decimal:
    """What members pay + grid export revenue − (what members receive + grid import cost +
    network fees). Zero for a budget-balanced community (docs/domain.md, "Budget balance")."""
    return (c.members_pay + c.grid_export_revenue) - (
        c.members_receive + c.grid_import_cost + c.network_fees
    )


@transaction.atomic
def settlement_run_meter(*, run: SettlementRun, now: datetime | None = None) -> bool:
    """CLEARED → METERED when every traded member-interval has validated energy."""
    now = now or timezone.now()
    run = settlement_run_lock(run.pk)
    if run.status != SettlementRun.Status.CLEARED:
        return run.status in (
            SettlementRun.Status.METERED,
            SettlementRun.Status.SETTLED,
            SettlementRun.Status.ANCHORED,
        )
    from apps.meters.selectors import member_interval_energy

    needed = set()
    for t in Trade.objects.filter(clearing__run=run).values_list(
        "seller_id", "buyer_id", "interval_start"
    ):
        needed.add((t[0], t[2]))
        needed.add((t[1], t[2]))
    if needed:
        have = member_interval_energy(
            member_ids={m for m, _ in needed}, start=run.period_start, end=run.period_end
        )
        if any(key not in have for key in needed):
            return False
    run.metered_at = now
    run.transition_to(SettlementRun.Status.METERED, actor=None, update_fields=["metered_at"])
    return True


@transaction.atomic
def settlement_run_settle(*, run: SettlementRun, now: datetime | None = None, actor: Actor = None):
    """METERED → SETTLED: write one line per member and interval; check budget balance."""
    now = now or timezone.now()
    run = settlement_run_lock(run.pk)
    if run.status != SettlementRun.Status.METERED:
        if run.status in (SettlementRun.Status.SETTLED, SettlementRun.Status.ANCHORED):
            return run
        check_transition(SettlementRun.TRANSITIONS, run.status, SettlementRun.Status.SETTLED)
    computed = compute_lines(run=run)
    imbalance = budget_imbalance(computed)
    if abs(imbalance) > Decimal("1e-18"):
        raise ApplicationError(
            "Settlement is not budget-balanced.", {"run": run.pk, "imbalance": str(imbalance)}
        )
    SettlementLine.objects.bulk_create(
        [
            SettlementLine(
                run=run,
                member_id=m,
                interval_start=start,
                **{k: (_q(v) if isinstance(v, Decimal) else v) for k, v in values.items()},
            )
            for (m, start), values in sorted(
                computed.lines.items(), key=lambda kv: (kv[0][1], kv[0][0])
            )
        ],
        batch_size=2000,
    )
    run.members_pay = _q(computed.members_pay)
    run.members_receive = _q(computed.members_receive)
    run.grid_import_cost = _q(computed.grid_import_cost)
    run.grid_export_revenue = _q(computed.grid_export_revenue)
    run.network_fees = _q(computed.network_fees)
    tree = trades_tree(run=run)
    run.trades_root = "0x" + tree.root.hex()
    run.trade_count = tree.count
    run.settled_at = now
    # Watermark on the ingest clock: corrections ingested after this re-settle the run.
    run.corrections_checked_at = timezone.now()
    run.transition_to(
        SettlementRun.Status.SETTLED,
        actor=actor,
        event=AuditEvent.SETTLEMENT_RUN_SETTLED,
        update_fields=None,
        details={
            "lines": len(computed.lines),
            "trades": tree.count,
            "trades_root": run.trades_root,
            "members_pay": str(run.members_pay),
            "members_receive": str(run.members_receive),
        },
    )
    settlement_run_settled.send(sender=SettlementRun, run=run, actor=actor)
    return run


# --- Merkle tree of a run's trades ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradesTree:
    root: bytes
    count: int
    trade_ids: list[int]
    leaves: list[bytes]
    tree: MerkleTree | None  # None for a run without trades


def minor(amount: Decimal) -> int:
    return int((amount * conf.get("MARKET_MINOR_UNITS")).to_integral_value(ROUND_HALF_EVEN))


def trade_leaf_for(trade: Trade, run_id: int, addresses: dict[int, str] | None = None) -> bytes:
    from apps.chain.merkle import trade_leaf
    from apps.chain.services import member_chain_address

    addresses = addresses if addresses is not None else {}
    for member in (trade.seller, trade.buyer):
        if member.pk not in addresses:
            addresses[member.pk] = member_chain_address(member)
    return trade_leaf(
        settlement_id=run_id,
        trade_id=trade.pk,
        seller=addresses[trade.seller_id],
        buyer=addresses[trade.buyer_id],
        interval_start=int(trade.interval_start.timestamp()),
        energy_wh=int(trade.wh_delivered),
        amount_minor=minor(trade.buyer_amount),
    )


def trades_tree(*, run: SettlementRun) -> TradesTree:
    """OZ-compatible Merkle tree over the run's trades in id order (apps.chain.merkle)."""
    from apps.chain import merkle

    trades = list(
        Trade.objects.filter(clearing__run=run).select_related("seller", "buyer").order_by("id")
    )
    if not trades:
        root = merkle.keccak256(EMPTY_ROOT_TAG + run.pk.to_bytes(32, "big"))
        return TradesTree(root, 0, [], [], None)
    addresses: dict[int, str] = {}  # deriving a custodial address costs ~1 ms: once per member
    leaves = [trade_leaf_for(t, run.pk, addresses) for t in trades]
    tree = merkle.build(leaves)
    return TradesTree(tree.root, len(trades), [t.pk for t in trades], leaves, tree)


@dataclass(frozen=True, slots=True)
class TradeProof:
    run_id: int
    trade_id: int
    leaf: str
    proof: list[str]
    root: str
    in_root: bool
    anchored_root: str


def trade_proof(*, trade: Trade) -> TradeProof:
    """Merkle proof that a trade is in its run's anchored root (checked locally)."""
    from apps.chain import merkle

    run = trade.clearing.run
    if run.status not in (SettlementRun.Status.SETTLED, SettlementRun.Status.ANCHORED):
        raise ApplicationError("The trade is not settled yet.", {"trade": trade.pk})
    tree = trades_tree(run=run)
    index = tree.trade_ids.index(trade.pk)
    assert tree.tree is not None  # the run has this trade
    proof = tree.tree.proof(index)
    leaf = tree.leaves[index]
    return TradeProof(
        run_id=run.pk,
        trade_id=trade.pk,
        leaf="0x" + leaf.hex(),
        proof=["0x" + p.hex() for p in proof],
        root="0x" + tree.root.hex(),
        in_root=merkle.verify(leaf, proof, bytes.fromhex(run.trades_root[2:]))
        and tree.root.hex() == run.trades_root[2:],
        anchored_root=run.trades_root,
    )


def trade_verify_on_chain(*, proof: TradeProof) -> bool | None:
    """EnergyTrading.verifyTrade(settlementId, leaf, proof); None when the chain is unreachable."""
    try:
        from apps.chain.client import contract

        energy_trading = contract("EnergyTrading")
        return bool(
            energy_trading.functions.verifyTrade(
                proof.run_id,
                bytes.fromhex(proof.leaf[2:]),
                [bytes.fromhex(p[2:]) for p in proof.proof],
            ).call()
        )
    except Exception as exc:  # noqa: BLE001 - any chain failure means "cannot check now"
        logger.info("on-chain trade verification unavailable: %s", exc)
        return None


# --- anchoring --------------------------------------------------------------------------------


def cooperative_address() -> str:
    address = conf.get("MARKET_COOPERATIVE_ADDRESS")
    if address:
        return address
    from apps.chain.client import operator_account

    return operator_account().address


def settlement_payload(*, run: SettlementRun) -> dict[str, Any]:
    """`settlement_apply` payload: trades root and money netted per member (sums to zero) over
    the run's own lines and the adjustments it carries (`chain_run` = run: corrections of runs
    already on chain, claimed by `settlement_run_anchor`). Also records, per member, what went
    on chain in `run.chain_deltas` (not saved here)."""
    from django.db.models import F, Q, Sum

    from apps.accounts.models import Member
    from apps.chain.services import member_chain_address

    nets = (
        SettlementLine.objects.filter(
            Q(run=run, is_adjustment=False) | Q(chain_run=run, is_adjustment=True)
        )
        .values("member_id")
        .annotate(
            net=Sum(
                F("p2p_purchase")
                + F("p2p_sale")
                + F("network_fee")
                + F("grid_import")
                + F("grid_export")
            ),
            adjustments=Sum(
                F("p2p_purchase")
                + F("p2p_sale")
                + F("network_fee")
                + F("grid_import")
                + F("grid_export"),
                filter=Q(is_adjustment=True),
            ),
        )
    )
    members = Member.objects.in_bulk([row["member_id"] for row in nets])
    deltas: dict[str, int] = {}
    recorded: dict[str, dict[str, Any]] = {}
    for row in sorted(nets, key=lambda r: r["member_id"]):
        delta = -minor(row["net"])  # a member who pays sees their balance fall
        if delta:
            address = member_chain_address(members[row["member_id"]])
            deltas[address] = deltas.get(address, 0) + delta
            recorded[str(row["member_id"])] = {
                "address": address,
                "delta_minor": delta,
                "adjustments": str(row["adjustments"] or 0),
            }
    coop = cooperative_address()
    balance = -sum(deltas.values())
    if balance:
        deltas[coop] = deltas.get(coop, 0) + balance
    run.chain_deltas = recorded
    return {
        "settlement_id": run.pk,
        "trades_root": run.trades_root,
        "members": list(deltas),
        "money_deltas_minor": list(deltas.values()),
    }


@transaction.atomic
def settlement_run_anchor(*, run: SettlementRun, actor: Actor, now: datetime | None = None):
    """Staff approve-and-anchor: SETTLED → ANCHORED, one `settlement_apply` intent (outbox)."""
    from apps.chain.services import chain_intent_submit

    now = now or timezone.now()
    run = settlement_run_lock(run.pk)
    if run.status == SettlementRun.Status.ANCHORED:
        return run
    check_transition(SettlementRun.TRANSITIONS, run.status, SettlementRun.Status.ANCHORED)
    # Re-settlement adjustments not yet on chain go in this netted batch. One UPDATE claims
    # them: a concurrent anchor of another run waits on the rows and then skips them.
    carried = SettlementLine.objects.filter(is_adjustment=True, chain_run__isnull=True).update(
        chain_run=run
    )
    intent = chain_intent_submit(
        intent="settlement_apply",
        payload=settlement_payload(run=run),
        idempotency_key=f"market-settlement-{run.pk}",
        actor=actor,
    )
    run.chain_intent_id = intent.pk
    run.anchored_at = now
    run.approved_by = actor_user(actor)
    run.transition_to(
        SettlementRun.Status.ANCHORED,
        actor=actor,
        event=AuditEvent.SETTLEMENT_RUN_ANCHORED,
        details={"intent": intent.pk, "trades_root": run.trades_root, "adjustments": carried},
        update_fields=["chain_intent_id", "anchored_at", "approved_by", "chain_deltas"],
    )
    return run


# --- late and corrected meter data ------------------------------------------------------------


@transaction.atomic
def settlement_run_resettle(
    *,
    run: SettlementRun,
    reason: str,
    actor: Actor = None,
    checked_until: datetime | None = None,
) -> list[SettlementLine]:
    """Re-settle a settled run from the current readings. Differences become adjustment lines
    (statement = none: they go on the member's next statement); no line is ever rewritten."""
    run = settlement_run_lock(run.pk)
    if run.status not in (SettlementRun.Status.SETTLED, SettlementRun.Status.ANCHORED):
        raise ApplicationError("Only settled runs can be re-settled.", {"run": run.pk})
    computed = compute_lines(run=run)
    fields = (
        SettlementLine.ENERGY_FIELDS
        + SettlementLine.AMOUNT_FIELDS
        + (
            "grid_only_charge",
            "grid_only_credit",
        )
    )
    current: dict[tuple[int, datetime], dict[str, Any]] = defaultdict(
        lambda: dict.fromkeys(fields, 0)
    )
    for line in SettlementLine.objects.filter(run=run):
        acc = current[(line.member_id, line.interval_start)]
        for f in fields:
            acc[f] += getattr(line, f)
    created = []
    for key in sorted(set(current) | set(computed.lines), key=lambda k: (k[1], k[0])):
        new = computed.lines.get(key, dict.fromkeys(fields, 0))
        old = current.get(key, dict.fromkeys(fields, 0))
        delta = {
            f: (_q(Decimal(new[f])) - Decimal(old[f]))
            if f not in SettlementLine.ENERGY_FIELDS
            else int(new[f]) - int(old[f])
            for f in fields
        }
        if any(delta.values()):
            created.append(
                SettlementLine(
                    run=run,
                    member_id=key[0],
                    interval_start=key[1],
                    is_adjustment=True,
                    reason=reason[:200],
                    **delta,
                )
            )
    SettlementLine.objects.bulk_create(created)
    if checked_until is not None:
        run.corrections_checked_at = checked_until
        run.save(update_fields=["corrections_checked_at"])
    if created:
        audit_log_write(
            event=AuditEvent.SETTLEMENT_RUN_RESETTLED,
            actor=actor,
            target=run,
            details={"adjustments": len(created), "reason": reason[:200]},
        )
    return created


def settlement_corrections_scan(*, now: datetime | None = None) -> int:
    """Re-settle every settled run whose period received late or corrected readings since its
    last check (any current reading ingested after the run's watermark: a correction is a new
    version, a late first reading a new row)."""
    from apps.meters.selectors import readings_last_ingested

    now = now or timezone.now()
    done = 0
    runs = SettlementRun.objects.filter(
        status__in=[SettlementRun.Status.SETTLED, SettlementRun.Status.ANCHORED],
        period_end__gte=now - timedelta(days=400),
    ).order_by("period_start")
    for run in runs:
        since = run.corrections_checked_at or run.settled_at
        if since is None:  # not settled yet: nothing to correct
            continue
        latest = readings_last_ingested(start=run.period_start, end=run.period_end, after=since)
        if latest is not None:
            settlement_run_resettle(run=run, reason="corrected meter data", checked_until=latest)
            done += 1
    return done


def settlement_runs_process(*, now: datetime | None = None) -> list[int]:
    """The settlement task: close, meter and settle every run whose period is over."""
    from apps.market.services.intervals import settlement_run_close

    now = now or timezone.now()
    delay = timedelta(minutes=int(conf.get("MARKET_METERING_DELAY_MINUTES")))
    settled = []
    for run in SettlementRun.objects.filter(
        status__in=[
            SettlementRun.Status.OPEN,
            SettlementRun.Status.CLEARED,
            SettlementRun.Status.METERED,
        ],
        period_end__lte=now - delay,
    ).order_by("period_start"):
        run = settlement_run_close(run=run, now=now)
        if settlement_run_meter(run=run, now=now):
            settlement_run_settle(run=run, now=now)
            settled.append(run.pk)
    return settled
