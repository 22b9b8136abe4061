"""Chain benchmark: outbox throughput against anvil and the gas cost of anchoring meter data.

Starts its own anvil on a free port (chain id 31338, so its outbox rows never mix with the
development node's), deploys the contracts through the normal deployment code, then measures:

- outbox throughput: N anchoring intents submitted, then swept until every one is confirmed
  (sign → send → receipt → confirm, one nonce manager) — confirmed intents per second;
- anchoring gas for batches of 100, 1,000 and 10,000 readings: Merkle tree build time, gas of the
  anchoring transaction (per batch and per reading) and gas of one on-chain verifyReading.

Rows it creates (network "eip155:31338") are deleted at the end.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import emit, setup_django  # noqa: E402

BENCH = "chain"
CHAIN_ID = 31338
THROUGHPUT_INTENTS = int(os.environ.get("BENCH_CHAIN_INTENTS", "200"))
BATCH_SIZES = (100, 1_000, 10_000)


def _signed_batch(n: int, interval_start: int):
    """n signed readings of distinct meters (device keys derived from the index)."""
    import coincurve

    from apps.meters.signing import SignedFields, address_from_public_key, sign_reading

    out = []
    for i in range(n):
        fields = SignedFields(f"BENCH-{i:05d}", 1, interval_start, 900, 100 + i % 400, i % 7)
        out.append(fields)
    key = (1).to_bytes(32, "big")
    address = address_from_public_key(coincurve.PrivateKey(key).public_key.format(False))
    return out, key, address, sign_reading


def run() -> None:
    setup_django()
    from django.conf import settings
    from eth_account import Account

    from apps.chain import client, merkle
    from apps.chain.deploy import deploy_all
    from apps.chain.intents import meter_key
    from apps.chain.keys import DEV_DUTY_INDEX
    from apps.chain.models import ChainIntent, ContractDeployment
    from apps.chain.outbox import chain_outbox_sweep
    from apps.chain.services import chain_intent_submit
    from apps.meters.signing import reading_digest
    from tests.fixtures.chain import deploy_config, dev_account, start_anvil, stop_anvil

    node = start_anvil(None, CHAIN_ID)
    network = f"eip155:{CHAIN_ID}"
    saved = {
        k: getattr(settings, k)
        for k in ("BLOCKCHAIN_NETWORK", "BLOCKCHAIN_CHAIN_ID", "CHAIN_OPERATOR_KEY",
                  "CHAIN_OUTBOX_ENQUEUE", "CHAIN_CONFIRMATIONS", "CHAIN_MULTISIG_SIGNERS",
                  "CHAIN_DUTY_KEYS")
    }  # fmt: skip
    keystores = tempfile.TemporaryDirectory()
    try:
        settings.BLOCKCHAIN_NETWORK = node.url
        settings.BLOCKCHAIN_CHAIN_ID = CHAIN_ID
        operator = dev_account(0)
        settings.CHAIN_OPERATOR_KEY = "0x" + bytes(operator.key).hex()
        # Outside the local chain duty keys must be keystores (cheap KDF: throwaway dev keys).
        settings.CHAIN_DUTY_KEYS = {}
        for duty, index in DEV_DUTY_INDEX.items():
            path = Path(keystores.name) / f"{duty}.json"
            path.write_text(json.dumps(Account.encrypt(dev_account(index).key, "bench",
                                                       iterations=2)))  # fmt: skip
            settings.CHAIN_DUTY_KEYS[duty] = {"keystore_path": str(path),
                                              "keystore_password": "bench"}  # fmt: skip
        settings.CHAIN_OUTBOX_ENQUEUE = False
        settings.CHAIN_CONFIRMATIONS = 1
        _cleanup(network)
        deployed = deploy_all(node.w3, operator, deploy_config())
        for d in deployed.values():
            ContractDeployment.objects.create(
                network=network, chain_id=CHAIN_ID, name=d.name, address=d.address,
                tx_hash=d.tx_hash, block_number=d.block_number,
                bytecode_sha256=d.bytecode_sha256,
            )  # fmt: skip

        # --- outbox throughput ------------------------------------------------------------------
        n = THROUGHPUT_INTENTS
        started = time.perf_counter()
        for i in range(n):
            chain_intent_submit(
                intent="meter_anchor",
                payload={"interval_start": 1_700_000_000 + 900 * i, "version": 1,
                         "root": "0x" + (i + 1).to_bytes(32, "big").hex(), "leaf_count": 1},
                idempotency_key=f"bench-throughput-{i}",
            )  # fmt: skip
        submitted = time.perf_counter()
        rows = ChainIntent.objects.filter(network=network)
        while rows.exclude(status=ChainIntent.Status.CONFIRMED).exists():
            counts = chain_outbox_sweep(limit=n)
            if counts.get("errors") or rows.filter(status=ChainIntent.Status.FAILED).exists():
                raise RuntimeError(f"outbox errors during the benchmark: {counts}")
        done = time.perf_counter()
        emit(BENCH, "outbox_submit_rate", n / (submitted - started), "intents/s", intents=n)
        emit(BENCH, "outbox_confirmed_throughput", n / (done - submitted), "intents/s",
             intents=n, confirmations=1)  # fmt: skip
        emit(BENCH, "outbox_end_to_end_throughput", n / (done - started), "intents/s", intents=n)

        _settlement_gas(node, deployed)

        # --- anchoring gas per batch size -----------------------------------------------------
        oracle = client.contract("MeterOracle")
        for size in BATCH_SIZES:
            start = 1_800_000_000 + size * 900
            fields, key, address, sign = _signed_batch(size, start)
            t0 = time.perf_counter()
            leaves = [merkle.reading_leaf(reading_digest(f)) for f in fields]
            tree = merkle.build(leaves)
            build_s = time.perf_counter() - t0
            row = chain_intent_submit(
                intent="meter_anchor",
                payload={"interval_start": start, "version": 1, "root": "0x" + tree.root.hex(),
                         "leaf_count": size},
                idempotency_key=f"bench-anchor-{size}",
            )  # fmt: skip
            while row.status != ChainIntent.Status.CONFIRMED:
                chain_outbox_sweep()
                row.refresh_from_db()
                if row.status == ChainIntent.Status.FAILED:
                    raise RuntimeError(row.error)
            emit(BENCH, f"anchor_gas_per_batch_{size}", row.gas_used, "gas", readings=size)
            emit(BENCH, f"anchor_gas_per_reading_{size}", row.gas_used / size, "gas/reading",
                 readings=size)  # fmt: skip
            emit(BENCH, f"merkle_build_{size}", build_s * 1000, "ms", readings=size)
            # one reading verified on chain (signature + proof): view call gas
            index = size // 2
            f = fields[index]
            signature = sign(key, f)
            node.w3.eth.send_transaction(
                {"from": dev_account(DEV_DUTY_INDEX["anchoring"]).address, "to": oracle.address,
                 "data": oracle.functions.registerMeter(meter_key(f.serial), address)
                 ._encode_transaction_data()}
            )  # fmt: skip
            reading = (
                f.serial, f.seq, f.interval_start, f.interval_seconds, f.import_wh,
                f.export_wh, f.register_import_wh, f.register_export_wh, f.status,
            )  # fmt: skip
            call = oracle.functions.verifyReading(start, 1, reading, signature, tree.proof(index))
            assert call.call() == [True, True]
            emit(BENCH, f"verify_reading_gas_{size}", call.estimate_gas(), "gas",
                 readings=size, proof_length=len(tree.proof(index)))  # fmt: skip
    finally:
        for k, v in saved.items():
            setattr(settings, k, v)
        keystores.cleanup()
        try:
            _cleanup(network)
        finally:
            stop_anvil(node)


def _settlement_gas(node, deployed, trades: int = 200, members: int = 20) -> None:
    """Netted settlement gas per trade vs an ERC-20 transfer, measured in the same run."""
    from apps.chain import merkle
    from apps.chain.approvals import settlement_typed_data
    from apps.chain.client import artifact
    from apps.chain.deploy import multisig_execute
    from apps.chain.keys import DEV_DUTY_INDEX
    from tests.fixtures.chain import dev_account

    rewarder = dev_account(DEV_DUTY_INDEX["rewards"])
    settler = dev_account(DEV_DUTY_INDEX["settlement"])
    approver = dev_account(DEV_DUTY_INDEX["settlement_approval"])

    w3 = node.w3

    def c(name):
        return w3.eth.contract(address=deployed[name].address, abi=artifact(name)["abi"])

    def gas_of(fn, sender):
        receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
        assert receipt["status"] == 1
        return int(receipt["gasUsed"])

    # ERC-20-style reference: the reward token (OpenZeppelin ERC20) between two holders.
    inc = c("RenewableIncentive")
    data = inc.functions.setRule(1, 10**18, True, b"\x00" * 32)._encode_transaction_data()
    multisig_execute(w3, deployed["StaffMultisig"].address, [dev_account(1), dev_account(2)],
                     target=inc.address, data=bytes.fromhex(data[2:]))  # fmt: skip
    a, b, fresh = dev_account(4).address, dev_account(5).address, dev_account(6).address
    for award_id, who in ((1, a), (2, b)):
        gas_of(inc.functions.award(award_id, who, 1, 10_000), rewarder.address)
        gas_of(inc.functions.claimFor(who), rewarder.address)
    to_existing = gas_of(inc.functions.transfer(b, 10**15), a)
    to_new = gas_of(inc.functions.transfer(fresh, 10**15), a)
    emit(BENCH, "erc20_transfer_gas_existing_holder", to_existing, "gas")
    emit(BENCH, "erc20_transfer_gas_new_holder", to_new, "gas")

    trading = c("EnergyTrading")
    accounts = [w3.to_checksum_address(f"0x{i + 1:040x}") for i in range(members)]
    for run in (1, 2):  # first run: cold balance slots; second: balances already non-zero
        rows, net = [], dict.fromkeys(accounts, 0)
        for t in range(trades):
            seller, buyer = accounts[t % members], accounts[(t * 7 + 3) % members]
            if seller == buyer:
                buyer = accounts[(t + 1) % members]
            amount = 25 + t % 40
            rows.append(merkle.trade_leaf(settlement_id=run, trade_id=t, seller=seller,
                                          buyer=buyer, interval_start=1_800_000_000,
                                          energy_wh=500, amount_minor=amount))  # fmt: skip
            net[seller] += amount
            net[buyer] -= amount
        root = merkle.build(rows).root
        deltas = [(m, d) for m, d in net.items() if d]
        members_, deltas_ = [m for m, _ in deltas], [d for _, d in deltas]
        typed = settlement_typed_data(
            settlement_id=run, trades_root=root, members=members_, money_deltas=deltas_,
            credit_moves=[], chain_id=w3.eth.chain_id, contract=trading.address,
        )  # fmt: skip
        approval = approver.sign_typed_data(full_message=typed).signature
        gas = gas_of(
            trading.functions.settle(run, root, members_, deltas_, [], approval), settler.address
        )
        label = "cold" if run == 1 else "warm"
        emit(BENCH, f"settlement_gas_per_trade_{label}", gas / trades, "gas/trade",
             trades=trades, members=members, batch_gas=gas,
             share_of_erc20_transfer=round(gas / trades / to_existing, 4))  # fmt: skip


def _cleanup(network: str) -> None:
    from apps.chain.models import ChainAccount, ChainEvent, ChainIntent, ContractDeployment

    ChainIntent.objects.filter(network=network).delete()
    ContractDeployment.objects.filter(network=network).delete()
    ChainAccount.objects.filter(network=network).delete()
    ChainEvent.objects.filter(network=network).delete()


if __name__ == "__main__":
    run()
