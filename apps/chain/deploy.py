"""Deploy the five contracts and the staff multisig, and wire their roles (no database access).

Order: StaffMultisig(signers, threshold); EnergyToken(minter, custodian),
EnergyTrading(settler, settlement approver, token), MeterOracle(oracle, meter-key delay;
DOCUMENT_ROLE to the documents key),
GridBalancer(recorder), RenewableIncentive(rewarder)
— each constructed with the deployer as temporary admin and one duty key per operational role
(``apps.chain.keys``). EnergyTrading gets the token's CUSTODIAN_ROLE (it moves credits in batch);
the mint and award caps are set; the guardians get GUARDIAN_ROLE (pause only). Then every
privileged role (DEFAULT_ADMIN, PAUSER, RULE_ADMIN, METER_ADMIN) is granted to the multisig and
renounced by the deployer, so afterwards only M-of-N staff approvals can change roles, caps or
meter keys, unpause or set reward rules — and the deployer key holds nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class DeployConfig:
    duties: dict[str, str]  # duty -> address of its key (apps.chain.intents.DUTIES)
    signers: list[str]
    threshold: int
    guardians: list[str] = field(default_factory=list)
    cap_period_seconds: int = 86_400
    mint_cap_wh: int = 100_000_000
    award_cap: int = 100_000 * 10**18
    redeem_cap: int = 100_000 * 10**18
    meter_key_delay: int = 0


# Privileged roles per contract, held by the multisig only.
PRIVILEGED = {
    "EnergyToken": ("PAUSER_ROLE",),
    "EnergyTrading": ("PAUSER_ROLE",),
    "MeterOracle": ("PAUSER_ROLE", "METER_ADMIN_ROLE"),
    "GridBalancer": ("PAUSER_ROLE",),
    "RenewableIncentive": ("PAUSER_ROLE", "RULE_ADMIN_ROLE"),
}


def deploy_all(w3: Web3, deployer: LocalAccount, config: DeployConfig) -> dict[str, Deployed]:
    s = _Sender(w3, deployer)
    me = deployer.address
    duty = config.duties
    out: dict[str, Deployed] = {}
    out["StaffMultisig"] = s.deploy("StaffMultisig", config.signers, config.threshold)
    multisig = out["StaffMultisig"].address
    out["EnergyToken"] = s.deploy("EnergyToken", me, duty["mint"], duty["certificates"])
    token = out["EnergyToken"].address
    out["EnergyTrading"] = s.deploy(
        "EnergyTrading", me, duty["settlement"], duty["settlement_approval"], token
    )
    out["MeterOracle"] = s.deploy("MeterOracle", me, duty["anchoring"], config.meter_key_delay)
    _grant_document_role(s, out["MeterOracle"].address, duty["documents"])
    out["GridBalancer"] = s.deploy("GridBalancer", me, duty["grid"])
    out["RenewableIncentive"] = s.deploy("RenewableIncentive", me, duty["rewards"])
    s.call("EnergyToken", token, "grantRole", role("CUSTODIAN_ROLE"), out["EnergyTrading"].address)
    period = config.cap_period_seconds
    s.call("EnergyToken", token, "setMintCap", config.mint_cap_wh, period)
    s.call("RenewableIncentive", out["RenewableIncentive"].address, "setAwardCap",
           config.award_cap, period)  # fmt: skip
    s.call("RenewableIncentive", out["RenewableIncentive"].address, "setRedeemCap",
           config.redeem_cap, period)  # fmt: skip
    for name in CONTRACT_NAMES[1:]:
        address = out[name].address
        for guardian in config.guardians:
            s.call(name, address, "grantRole", role("GUARDIAN_ROLE"), guardian)
        privileged = PRIVILEGED[name]
        for r in privileged:
            s.call(name, address, "grantRole", role(r), multisig)
        s.call(name, address, "grantRole", ADMIN_ROLE, multisig)
        for r in privileged:
            s.call(name, address, "renounceRole", role(r), me)
        s.call(name, address, "renounceRole", ADMIN_ROLE, me)
    return out


def _grant_document_role(s: _Sender, oracle: str, documents_key: str) -> None:
    """The document-anchoring duty key gets MeterOracle's DOCUMENT_ROLE (while the deployer is
    still the admin, before it hands the admin role to the multisig and renounces it)."""
    s.call("MeterOracle", oracle, "grantRole", role("DOCUMENT_ROLE"), documents_key)


def fund_local_accounts(w3: Web3, funder: LocalAccount, addresses: list[str]) -> None:
    """Give development accounts beyond anvil's ten prefunded ones gas money (local chain only)."""
    s = _Sender(w3, funder)
    for address in addresses:
        if w3.eth.get_balance(address) < 10**18:
            s.send({"to": address, "value": 100 * 10**18, "gas": 21_000})


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
