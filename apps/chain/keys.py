"""Duty keys: one signing key per on-chain duty (least privilege).

Each duty (``apps.chain.intents.DUTIES``) holds exactly one contract role, and the outbox signs
every intent with the key of its duty (``IntentSpec.duty``), so a stolen key exposes one duty:

| duty | role |
|---|---|
| ``mint`` | EnergyToken ``MINTER_ROLE`` (mint within the period cap, cancel custodial holdings) |
| ``certificates`` | EnergyToken ``CUSTODIAN_ROLE`` (custodial moves, claims, registrations) |
| ``settlement`` | EnergyTrading ``SETTLER_ROLE`` |
| ``anchoring`` | MeterOracle ``ORACLE_ROLE`` (anchors; first meter keys, time-locked) |
| ``rewards`` | RenewableIncentive ``REWARDER_ROLE`` (awards within the period cap) |
| ``grid`` | GridBalancer ``RECORDER_ROLE`` |
| ``documents`` | MeterOracle ``DOCUMENT_ROLE`` (document digests: reports, audit-log heads) |
| ``settlement_approval`` | EnergyTrading ``APPROVER_ROLE`` (co-signs settlements, sends nothing) |

Keys come from settings ``CHAIN_DUTY_KEYS[duty]``: an external signer (``signer_url`` + the key's
``address``: a JSON-RPC endpoint answering ``eth_signTransaction`` and ``eth_signTypedData_v4``,
e.g. clef or a remote signer in front of an HSM — the key never reaches this server), an encrypted
V3 keystore (path + password), or a raw hex key on the local chain only; locally, without
configuration, the development mnemonic's accounts ``DEV_DUTY_INDEX``. Keys are never written to
the database. Whatever signs, the result is checked here: a transaction or signature that does not
recover to the duty's address, or a transaction other than the one asked for, is refused.
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
from django.conf import settings
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from apps.chain import client
from apps.chain.intents import INTENTS, KEY_DUTIES

# Development mnemonic accounts per duty (0 deploys, 1-3 are the multisig signers, 4-9 are left
# to tests and tools, 16 is the local guardian, 17 anchors documents).
DEV_DUTY_INDEX = {
    "mint": 10,
    "certificates": 11,
    "settlement": 12,
    "anchoring": 13,
    "rewards": 14,
    "grid": 15,
    "documents": 17,
    "settlement_approval": 18,  # 17 is left to the documents duty
}
DEV_GUARDIAN_INDEX = 16


def duty_of(intent: str) -> str:
    """The duty whose key signs `intent`."""
    return INTENTS[intent].duty


def _conf(duty: str) -> dict[str, str]:
    if duty not in KEY_DUTIES:
        raise client.ChainConfigError(f"Unknown duty {duty!r}; known: {', '.join(KEY_DUTIES)}.")
    return dict(settings.CHAIN_DUTY_KEYS.get(duty) or {})


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw_transaction: bytes
    hash: bytes


class Signer(Protocol):
    address: str

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTx: ...

    def sign_typed_data(self, typed: dict[str, Any]) -> bytes: ...


class LocalSigner:
    """A key held by this process (keystore, or a development/raw key on the local chain)."""

    def __init__(self, account: LocalAccount) -> None:
        self.account = account
        self.address = account.address

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTx:
        signed = self.account.sign_transaction(tx)
        return SignedTx(bytes(signed.raw_transaction), bytes(signed.hash))

    def sign_typed_data(self, typed: dict[str, Any]) -> bytes:
        return bytes(self.account.sign_typed_data(full_message=typed).signature)


_rpc_ids = itertools.count(1)


class RemoteSigner:
    """A key held by an external signer (JSON-RPC): ``eth_signTransaction`` for transactions,
    ``eth_signTypedData_v4`` for EIP-712 approvals. Every answer is checked against the request
    and the configured address before it is used."""

    def __init__(self, *, url: str, address: str, duty: str, timeout: float = 10.0) -> None:
        self.url = url
        self.address = to_checksum_address(address)
        self.duty = duty
        self.timeout = timeout

    def _call(self, method: str, params: list) -> Any:
        body = {"jsonrpc": "2.0", "id": next(_rpc_ids), "method": method, "params": params}
        try:
            answer = requests.post(self.url, json=body, timeout=self.timeout).json()
        except (requests.RequestException, ValueError) as exc:
            raise client.ChainUnavailable(
                f"External signer of the {self.duty} duty unreachable: {exc.__class__.__name__}"
            ) from exc
        if not isinstance(answer, dict) or answer.get("error") or "result" not in answer:
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise client.ChainConfigError(
                f"External signer of the {self.duty} duty refused {method}: {error}"[:300]
            )
        return answer["result"]

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTx:
        request = {"from": self.address, **{k: _rpc_value(v) for k, v in tx.items()}}
        result = self._call("eth_signTransaction", [request])
        raw_hex = result.get("raw") if isinstance(result, dict) else result
        try:
            raw = bytes.fromhex(str(raw_hex).removeprefix("0x"))
            decoded = TypedTransaction.from_bytes(HexBytes(raw))
            sender = Account.recover_transaction(raw)
        except Exception as exc:  # noqa: BLE001 - anything undecodable is refused the same way
            raise client.ChainConfigError(
                f"External signer of the {self.duty} duty returned an undecodable transaction."
            ) from exc
        fields = decoded.as_dict()
        asked = {k: tx[k] for k in ("chainId", "nonce", "to", "value", "data", "gas",
                                    "maxFeePerGas", "maxPriorityFeePerGas")}  # fmt: skip
        got = {k: fields.get(k) for k in asked}
        got["to"] = to_checksum_address(got["to"]) if got["to"] else got["to"]
        asked["to"] = to_checksum_address(asked["to"])
        got["data"], asked["data"] = bytes(got["data"] or b""), bytes(asked["data"] or b"")
        if sender != self.address or got != asked:
            raise client.ChainConfigError(
                f"External signer of the {self.duty} duty returned a transaction signed by "
                f"{sender} or differing from the one asked for; refused."
            )
        return SignedTx(raw, keccak(raw))

    def sign_typed_data(self, typed: dict[str, Any]) -> bytes:
        result = self._call("eth_signTypedData_v4", [self.address, json.dumps(_jsonable(typed))])
        try:
            signature = bytes.fromhex(str(result).removeprefix("0x"))
            signer = Account.recover_message(
                encode_typed_data(full_message=typed), signature=signature
            )
        except Exception as exc:  # noqa: BLE001
            raise client.ChainConfigError(
                f"External signer of the {self.duty} duty returned an invalid signature."
            ) from exc
        if signer != self.address:
            raise client.ChainConfigError(
                f"External signer of the {self.duty} duty signed with {signer}, not "
                f"{self.address}; refused."
            )
        return signature


def _rpc_value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value


def duty_signer(duty: str) -> Signer:
    """The signer of `duty`: an external signer when configured, else its local key."""
    conf = _conf(duty)
    if conf.get("signer_url"):
        name = f"CHAIN_{duty.upper()}"
        if not conf.get("address"):
            raise client.ChainConfigError(
                f"{name}_SIGNER_URL needs {name}_ADDRESS (the address its key must sign as)."
            )
        return RemoteSigner(url=conf["signer_url"], address=conf["address"], duty=duty)
    return LocalSigner(duty_account(duty))


def duty_account(duty: str) -> LocalAccount:
    """The local signing key of `duty` (raises ChainConfigError when it is missing or not
    allowed). Callers that sign should use `duty_signer`, which also knows external signers."""
    conf = _conf(duty)
    name = f"CHAIN_{duty.upper()}"
    if conf.get("signer_url"):
        raise client.ChainConfigError(f"The {duty} duty signs through {name}_SIGNER_URL.")
    if conf.get("key"):
        if not client.network_config().is_local:
            raise client.ChainConfigError(
                f"{name}_KEY is a raw private key, refused outside the local chain: "
                f"configure {name}_KEYSTORE_PATH and {name}_KEYSTORE_PASSWORD."
            )
        try:
            return Account.from_key(conf["key"])
        except Exception as exc:  # noqa: BLE001
            raise client.ChainConfigError(f"{name}_KEY is not a valid private key.") from exc
    if conf.get("keystore_path"):
        path = Path(conf["keystore_path"])
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError as exc:
            raise client.ChainConfigError(f"Keystore file {path} does not exist.") from exc
        return _keystore_account(str(path), conf.get("keystore_password", ""), mtime)
    if client.network_config().is_local:
        return client.mnemonic_account(DEV_DUTY_INDEX[duty])
    raise client.ChainConfigError(
        f"No signing key configured for the {duty} duty: set {name}_KEYSTORE_PATH "
        f"(+ {name}_KEYSTORE_PASSWORD)."
    )


@functools.lru_cache(maxsize=32)
def _keystore_account(path: str, password: str, mtime: int) -> LocalAccount:
    """Decrypted once per file version (scrypt is slow on purpose)."""
    try:
        key = Account.decrypt(json.loads(Path(path).read_text()), password)
    except ValueError as exc:
        raise client.ChainConfigError(f"Cannot decrypt keystore {path}: {exc}") from exc
    return Account.from_key(key)


def duty_addresses() -> dict[str, str]:
    """{duty: address} of every duty key (the co-signing approval key included)."""
    return {duty: duty_signer(duty).address for duty in KEY_DUTIES}


def guardian_addresses() -> list[str]:
    """Addresses that may pause (never unpause) every contract."""
    guardians = [to_checksum_address(a) for a in settings.CHAIN_GUARDIANS]
    if not guardians and client.network_config().is_local:
        guardians = [client.mnemonic_account(DEV_GUARDIAN_INDEX).address]
    return guardians


@functools.lru_cache(maxsize=1)
def development_addresses() -> frozenset[str]:
    """Addresses of well-known development keys (the public anvil/hardhat mnemonic, first 20
    accounts, and the configured ANVIL_MNEMONIC): never acceptable outside the local chain."""
    public = "test test test test test test test test test test test junk"
    out = set()
    for mnemonic in {public, settings.ANVIL_MNEMONIC}:
        for i in range(20):
            account = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}")
            out.add(account.address.lower())
    return frozenset(out)
