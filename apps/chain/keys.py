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

Keys come from settings ``CHAIN_DUTY_KEYS[duty]``: an encrypted V3 keystore (path + password), or
a raw hex key on the local chain only; locally, without configuration, the development mnemonic's
accounts ``DEV_DUTY_INDEX``. Keys are never written to the database.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from django.conf import settings
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from apps.chain import client
from apps.chain.intents import DUTIES, INTENTS

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
}
DEV_GUARDIAN_INDEX = 16


def duty_of(intent: str) -> str:
    """The duty whose key signs `intent`."""
    return INTENTS[intent].duty


def _conf(duty: str) -> dict[str, str]:
    if duty not in DUTIES:
        raise client.ChainConfigError(f"Unknown duty {duty!r}; known: {', '.join(DUTIES)}.")
    return dict(settings.CHAIN_DUTY_KEYS.get(duty) or {})


def duty_account(duty: str) -> LocalAccount:
    """The signing key of `duty` (raises ChainConfigError when it is missing or not allowed)."""
    conf = _conf(duty)
    name = f"CHAIN_{duty.upper()}"
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
    """{duty: address} of every duty key."""
    return {duty: duty_account(duty).address for duty in DUTIES}


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
