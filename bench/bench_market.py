"""Market benchmarks (acceptance 3 of issue 5). Prints JSON lines via bench.common.emit.

1. Clearing one 15-minute interval for 1,000 and 10,000 members with topology (transformers of
   25 members, feeders of 10 transformers, substations of 4 feeders), distance fees and losses
   and binding transformer/feeder capacity limits: the zonal engine (apps.market.clearing) next
   to a naive pairwise matcher on the same input and at the same uniform price; peak memory.
2. Gas per settled trade for a simulated day (96 intervals, 100 members) on a local anvil node:
   netted EnergyTrading.settle batches (one per day, and one per interval) next to one ERC-20
   transfer per trade (the OpenZeppelin ERC-20 of RenewableIncentive).
"""

from __future__ import annotations

import math
import random
import statistics
import time
import tracemalloc
from collections import defaultdict

from bench.common import emit, setup_django

BENCH = "market"
FEES = (0.010, 0.025, 0.050)
LOSSES = (5_000, 20_000, 40_000)


def synthetic_market(n: int, seed: int = 7):
    from apps.market import clearing as c

    rng = random.Random(seed)
    zones = {m: c.Zone(m // 25, m // 250, m // 1000) for m in range(n)}
    n_t, n_f = -(-n // 25), -(-n // 250)
    # Transformer P2P headroom 2-8 kWh per interval, feeders 15 kWh: limits bind.
    network = c.Network(
        zones=zones,
        fee_per_kwh=FEES,
        loss_ppm=LOSSES,
        transformer_capacity_wh={t: rng.randint(2_000, 8_000) for t in range(n_t)},
        feeder_capacity_wh=dict.fromkeys(range(n_f), 15_000),
    )
    orders = []
    for m in range(n):
        seller = rng.random() < 0.35
        orders.append(
            c.Order(
                order_id=m + 1,
                member_id=m,
                side=c.OFFER if seller else c.BID,
                wh=rng.randint(100, 1_500) if seller else rng.randint(50, 900),
                limit=rng.randint(8, 20) / 100 if seller else rng.randint(14, 32) / 100,
                green=seller or rng.random() < 0.1,
            )
        )
    return orders, network


def naive_clear(orders, network):
    """Pairwise: every buyer (merit order) scans every seller (merit order) at the same price."""
    from apps.market import clearing as c

    offers = [o for o in orders if o.side == c.OFFER]
    bids = [o for o in orders if o.side == c.BID]
    price = c.clearing_price(offers, bids, network)
    sellers = sorted((o for o in offers if o.limit <= price), key=lambda o: (o.limit, o.order_id))
    buyers = sorted(bids, key=lambda o: (-o.limit, o.order_id))
    rest = {o.order_id: o.wh for o in orders}
    tflow: dict[int, int] = defaultdict(int)
    fflow: dict[int, int] = defaultdict(int)
    traded = 0
    for b in buyers:
        zb = network.zones[b.member_id]
        for s in sellers:
            if rest[b.order_id] <= 0:
                break
            if rest[s.order_id] <= 0 or (b.green and not s.green):
                continue
            zs = network.zones[s.member_id]
            d = c.distance(zs, zb)
            fee, loss = FEES[d], LOSSES[d]
            if c.buyer_max_price(b.limit, fee, loss) < price:
                continue
            q = min(rest[s.order_id], rest[b.order_id] * c.PPM // (c.PPM - loss))
            if d >= c.FEEDER:
                caps = [
                    network.transformer_capacity_wh[zs.transformer] - tflow[zs.transformer],
                    network.transformer_capacity_wh[zb.transformer] + tflow[zb.transformer],
                ]
                if d == c.REGIONAL:
                    caps += [
                        network.feeder_capacity_wh[zs.feeder] - fflow[zs.feeder],
                        network.feeder_capacity_wh[zb.feeder] + fflow[zb.feeder],
                    ]
                q = min(q, *caps)
            if q <= 0:
                continue
            delivered = -(-q * (c.PPM - loss) // c.PPM)
            rest[s.order_id] -= q
            rest[b.order_id] -= delivered
            traded += delivered
            if d >= c.FEEDER:
                tflow[zs.transformer] += q
                tflow[zb.transformer] -= q
            if d == c.REGIONAL:
                fflow[zs.feeder] += q
                fflow[zb.feeder] -= q
    return traded


def bench_clearing() -> None:
    from apps.market import clearing as c

    for n in (1_000, 10_000):
        orders, network = synthetic_market(n)
        times, cpu = [], []
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            result = c.clear(orders, network)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        emit(BENCH, f"clear_{n}_members", statistics.median(times), "s", runs=5,
             cpu_s=round(statistics.median(cpu), 4), trades=len(result.trades),
             traded_wh=result.traded_wh, curtailed_wh=result.curtailed_wh,
             price=result.price, target_s=0.5)  # fmt: skip
        tracemalloc.start()
        c.clear(orders, network)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        emit(BENCH, f"clear_{n}_members_peak_memory", peak / 2**20, "MiB")
        t0 = time.perf_counter()
        naive_traded = naive_clear(orders, network)
        naive_s = time.perf_counter() - t0
        emit(BENCH, f"naive_pairwise_{n}_members", naive_s, "s", traded_wh=naive_traded)
        emit(BENCH, f"speedup_{n}_members", naive_s / statistics.median(times), "x")


# --- gas ---------------------------------------------------------------------------------------


def simulated_day(members: int = 100, seed: int = 11):
    """96 intervals of a community with 30 % PV prosumers, cleared by the engine."""
    from apps.market import clearing as c

    rng = random.Random(seed)
    zones = {m: c.Zone(m // 20, m // 60, 0) for m in range(members)}
    network = c.Network(
        zones, FEES, LOSSES, dict.fromkeys(range(5), 20_000), {0: 60_000, 1: 60_000}
    )
    pv = {m for m in range(members) if m % 10 < 3}
    day = []
    for k in range(96):
        sun = max(0.0, math.sin(math.pi * (k - 24) / 48)) if 24 <= k < 72 else 0.0
        orders = []
        for m in range(members):
            load = rng.randint(40, 200) + (150 if 68 <= k < 88 else 0)
            gen = int(1_200 * sun * rng.uniform(0.7, 1.1)) if m in pv else 0
            net = load - gen
            if net == 0:
                continue
            side = c.BID if net > 0 else c.OFFER
            limit = rng.randint(20, 30) / 100 if side == c.BID else rng.randint(8, 14) / 100
            orders.append(c.Order(k * 1000 + m, m, side, abs(net), limit, m in pv))
        day.append(c.clear(orders, network).trades)
    return day


def bench_gas() -> None:
    setup_django()
    from eth_account import Account

    from apps.chain import merkle
    from apps.chain.approvals import settlement_typed_data
    from apps.chain.client import artifact
    from tests.fixtures.chain import dev_account, start_anvil, stop_anvil

    day = simulated_day()
    trades = [t for interval in day for t in interval]
    node = start_anvil()
    try:
        w3 = node.w3
        me = dev_account(0).address

        def send(tx, sender=me):
            tx_hash = w3.eth.send_transaction({"from": sender, **tx})
            return w3.eth.wait_for_transaction_receipt(tx_hash)

        def deploy(name, *args):
            art = artifact(name)
            factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
            receipt = send({"data": factory.constructor(*args).data_in_transaction})
            return w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])

        approver = dev_account(1)  # the settlement-approval duty's key (co-signs each batch)
        token = deploy("EnergyToken", me, me, me)
        trading = deploy("EnergyTrading", me, me, approver.address, token.address)
        erc20 = deploy("RenewableIncentive", me, me)
        addresses = {m: Account.create().address for m in range(100)}
        coop = Account.create().address

        # Netted: one settle() per day, and one per interval.
        def settle_gas(settlement_id, batch):
            money = defaultdict(int)
            for t in batch:
                cents = round(t.wh_from_seller * (t.price + t.fee_per_kwh) / 10)
                money[addresses[t.buyer_member_id]] -= cents
                money[addresses[t.seller_member_id]] += round(t.wh_from_seller * t.price / 10)
            money[coop] -= sum(money.values())
            leaves = [
                merkle.trade_leaf(
                    settlement_id=settlement_id,
                    trade_id=i,
                    seller=addresses[t.seller_member_id],
                    buyer=addresses[t.buyer_member_id],
                    interval_start=0,
                    energy_wh=t.wh_delivered,
                    amount_minor=0,
                )  # fmt: skip
                for i, t in enumerate(batch)
            ]
            root = merkle.build(leaves).root
            members = [a for a, v in money.items() if v]
            deltas = [money[a] for a in members]
            typed = settlement_typed_data(
                settlement_id=settlement_id, trades_root=root, members=members,
                money_deltas=deltas, credit_moves=[], chain_id=w3.eth.chain_id,
                contract=trading.address,
            )  # fmt: skip
            approval = approver.sign_typed_data(full_message=typed).signature
            data = trading.functions.settle(
                settlement_id, root, members, deltas, [], approval
            )._encode_transaction_data()
            return send({"to": trading.address, "data": data}).gasUsed

        daily = settle_gas(1, trades)
        per_interval = sum(settle_gas(100 + k, batch) for k, batch in enumerate(day) if batch)
        # Naive: fund every buyer with ERC-20 tokens, then one transfer per trade.
        rule = erc20.functions.setRule(1, 10**18, True, b"\x00" * 32)._encode_transaction_data()
        send({"to": erc20.address, "data": rule})
        buyers = sorted({t.buyer_member_id for t in trades})
        for i, m in enumerate(buyers):
            for fn in (erc20.functions.award(i + 1, addresses[m], 1, 10**9),
                       erc20.functions.claimFor(addresses[m])):  # fmt: skip
                send({"to": erc20.address, "data": fn._encode_transaction_data()})
        for m in buyers:
            node.rpc("anvil_impersonateAccount", [addresses[m]])
            node.rpc("anvil_setBalance", [addresses[m], hex(10**20)])
        naive = 0
        hashes = []
        for t in trades:
            data = erc20.functions.transfer(
                addresses[t.seller_member_id], t.wh_from_seller * 10**12
            )._encode_transaction_data()
            hashes.append(
                w3.eth.send_transaction(
                    {"from": addresses[t.buyer_member_id], "to": erc20.address, "data": data}
                )
            )
        for h in hashes:
            naive += w3.eth.wait_for_transaction_receipt(h).gasUsed
    finally:
        stop_anvil(node)
    n = len(trades)
    emit(BENCH, "simulated_day_trades", n, "trades", intervals=96, members=100)
    emit(BENCH, "gas_per_trade_netted_daily_batch", daily / n, "gas", tx_gas=daily, txs=1)
    emit(BENCH, "gas_per_trade_netted_interval_batches", per_interval / n, "gas",
         txs=sum(1 for b in day if b))  # fmt: skip
    emit(BENCH, "gas_per_trade_naive_erc20_transfer", naive / n, "gas", txs=n)
    emit(BENCH, "netted_daily_vs_naive_gas", 100 * daily / naive, "%", target="<= 20")
    emit(BENCH, "netted_interval_vs_naive_gas", 100 * per_interval / naive, "%", target="<= 20")


def run() -> None:
    import os
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    bench_clearing()
    bench_gas()


if __name__ == "__main__":
    run()
