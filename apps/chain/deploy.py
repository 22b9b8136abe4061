"""Deploy the five contracts and the staff multisig, and wire their roles (no database access).

Order: StaffMultisig(signers, threshold); EnergyToken, EnergyTrading(token), MeterOracle,
GridBalancer, RenewableIncentive — each constructed with the deployer as temporary admin and the
operator (outbox hot key) holding the operational role (minter/custodian, settler, oracle,
recorder, rewarder). EnergyTrading gets the token's CUSTODIAN_ROLE (it moves credits in batch).
Then every privileged role (DEFAULT_ADMIN, PAUSER, RULE_ADMIN) is granted to the multisig and
renounced by the deployer, so afterwards only M-of-N staff approvals can change roles, pause or
set reward rules.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from web3 import Web3

from apps.chain.client import CONTRACT_NAMES, artifact

ADMIN_ROLE = b"\x00" * 32


def role(name: str) -> bytes:
    return Web3.keccak(text=name)


@dataclass(frozen=True, slots=True)
class Deployed:
    name: str
    address: str
    tx_hash: str
    block_number: int
    bytecode_sha256: str


def bytecode_sha256(name: str) -> str:
    return hashlib.sha256(artifact(name)["bytecode"].encode()).hexdigest()


class _Sender:
    def __init__(self, w3: Web3, account: LocalAccount) -> None:
        self.w3 = w3
        self.account = account
        self.nonce = w3.eth.get_transaction_count(account.address, "pending")

    def send(self, tx: dict[str, Any]) -> Any:
        tx = {
            **tx,
            "from": self.account.address,
            "nonce": self.nonce,
            "chainId": self.w3.eth.chain_id,
        }
        if "gas" not in tx:
            tx["gas"] = int(self.w3.eth.estimate_gas(tx) * 12 // 10) + 20_000
        base = int(self.w3.eth.get_block("latest").get("baseFeePerGas") or 0)
        tx.setdefault("maxPriorityFeePerGas", 1_000_000_000)
        tx.setdefault("maxFeePerGas", 2 * base + tx["maxPriorityFeePerGas"])
        tx.pop("from")
        signed = self.account.sign_transaction(tx)
        self.nonce += 1
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise RuntimeError(f"deployment transaction {tx_hash.hex()} reverted")
        return receipt

    def deploy(self, name: str, *args: Any) -> Deployed:
        art = artifact(name)
        ctor = next((i for i in art["abi"] if i["type"] == "constructor"), {"inputs": []})
        types = [i["type"] for i in ctor["inputs"]]
        data = art["bytecode"] + abi_encode(types, list(args)).hex()
        receipt = self.send({"data": data, "value": 0})
        return Deployed(
            name=name,
            address=receipt["contractAddress"],
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            bytecode_sha256=bytecode_sha256(name),
        )

    def call(self, name: str, address: str, fn: str, *args: Any) -> Any:
        c = self.w3.eth.contract(address=address, abi=artifact(name)["abi"])
        data = c.functions[fn](*args)._encode_transaction_data()
        return self.send({"to": address, "data": data, "value": 0})


def deploy_all(
    w3: Web3,
    deployer: LocalAccount,
    *,
    operator: str,
    signers: list[str],
    threshold: int,
) -> dict[str, Deployed]:
    s = _Sender(w3, deployer)
    me = deployer.address
    out: dict[str, Deployed] = {}
    out["StaffMultisig"] = s.deploy("StaffMultisig", signers, threshold)
    multisig = out["StaffMultisig"].address
    out["EnergyToken"] = s.deploy("EnergyToken", me, operator)
    token = out["EnergyToken"].address
    out["EnergyTrading"] = s.deploy("EnergyTrading", me, operator, token)
    out["MeterOracle"] = s.deploy("MeterOracle", me, operator)
    out["GridBalancer"] = s.deploy("GridBalancer", me, operator)
    out["RenewableIncentive"] = s.deploy("RenewableIncentive", me, operator)
    s.call("EnergyToken", token, "grantRole", role("CUSTODIAN_ROLE"), out["EnergyTrading"].address)
    for name in CONTRACT_NAMES[1:]:
        address = out[name].address
        privileged = ["PAUSER_ROLE"] + (["RULE_ADMIN_ROLE"] if name == "RenewableIncentive" else [])
        for r in privileged:
            s.call(name, address, "grantRole", role(r), multisig)
        s.call(name, address, "grantRole", ADMIN_ROLE, multisig)
        for r in privileged:
            s.call(name, address, "renounceRole", role(r), me)
        s.call(name, address, "renounceRole", ADMIN_ROLE, me)
    return out


def multisig_execute(
    w3: Web3,
    multisig: str,
    signers: list[LocalAccount],
    *,
    target: str,
    data: bytes,
) -> Any:
    """Propose with the first signer, approve with the others, execute (for tools and tests)."""
    ms = w3.eth.contract(address=multisig, abi=artifact("StaffMultisig")["abi"])
    proposal_id = ms.functions.proposalCount().call()
    _Sender(w3, signers[0]).call("StaffMultisig", multisig, "propose", target, 0, data)
    for signer in signers[1:]:
        _Sender(w3, signer).call("StaffMultisig", multisig, "approve", proposal_id)
    return _Sender(w3, signers[0]).call("StaffMultisig", multisig, "execute", proposal_id)
