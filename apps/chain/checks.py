"""Deployment checks of the chain configuration and keys (`manage.py check --deploy`).

Every duty (``apps.chain.intents.KEY_DUTIES``, the settlement-approval co-signer included) must
sign with its own encrypted keystore or an external signer in production: a raw hex key in the
environment, a well-known development key, a missing key, one key shared by two duties, or an
external signer without its address or reached over plain HTTP off this host is an error
(keystores are not decrypted: the address a V3 keystore stores is enough to recognise a
development key).

Production must never run on the local development chain or with a key, mnemonic, signer set or
custody secret that anyone can derive from public material: anvil's test mnemonic and its
accounts are published, and so is the local custody secret in this repository.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from django.conf import settings
from django.core.checks import Error
from eth_account import Account
from eth_utils import to_checksum_address

from apps.chain.client import DEVELOPMENT_CUSTODY_SECRET, PUBLIC_TEST_MNEMONIC
from apps.chain.intents import KEY_DUTIES
from apps.core.checks import deployment_check

_DEV_ACCOUNTS = 10  # anvil funds and prints the first ten accounts of its mnemonic
_RAW_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


@functools.cache
def _development_accounts() -> tuple[frozenset[str], frozenset[str]]:
    """(private keys, addresses) of the public anvil development accounts, lower-case hex."""
    keys, addresses = set(), set()
    for index in range(_DEV_ACCOUNTS):
        account = Account.from_mnemonic(
            PUBLIC_TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
        )
        keys.add(account.key.hex().lower().removeprefix("0x"))
        addresses.add(account.address.lower())
    return frozenset(keys), frozenset(addresses)


@deployment_check
def check_chain_configuration(app_configs=None, **kwargs) -> list[Error]:
    errors: list[Error] = []
    dev_keys, dev_addresses = _development_accounts()
    if settings.BLOCKCHAIN_NETWORK == "local":
        errors.append(
            Error(
                "BLOCKCHAIN_NETWORK is 'local': the development anvil node, whose accounts and "
                "keys are public.",
                hint="Set BLOCKCHAIN_NETWORK to the RPC URL of the cooperative's chain and "
                "BLOCKCHAIN_CHAIN_ID to its chain id.",
                id="energysphere.E101",
            )
        )
    operator_key = settings.CHAIN_OPERATOR_KEY.strip()
    if operator_key:
        if operator_key.lower().removeprefix("0x") in dev_keys:
            errors.append(
                Error(
                    "CHAIN_OPERATOR_KEY is one of anvil's public development keys.",
                    id="energysphere.E102",
                )
            )
        elif _RAW_HEX_KEY.match(operator_key):
            errors.append(
                Error(
                    "CHAIN_OPERATOR_KEY is a raw private key in the environment.",
                    hint="Use an encrypted keystore (CHAIN_KEYSTORE_PATH and "
                    "CHAIN_KEYSTORE_PASSWORD) instead.",
                    id="energysphere.E103",
                )
            )
    elif settings.CHAIN_KEYSTORE_PATH:
        if not Path(settings.CHAIN_KEYSTORE_PATH).is_file():
            errors.append(
                Error(
                    f"CHAIN_KEYSTORE_PATH {settings.CHAIN_KEYSTORE_PATH} is not a file.",
                    id="energysphere.E110",
                )
            )
    else:
        errors.append(
            Error(
                "No operator key is configured (neither CHAIN_KEYSTORE_PATH nor "
                "CHAIN_OPERATOR_KEY).",
                hint="Set CHAIN_KEYSTORE_PATH and CHAIN_KEYSTORE_PASSWORD.",
                id="energysphere.E104",
            )
        )
    signers = [s.lower() for s in settings.CHAIN_MULTISIG_SIGNERS]
    if not signers:
        errors.append(
            Error(
                "CHAIN_MULTISIG_SIGNERS is empty: the staff multisig would fall back to anvil's "
                "public development accounts.",
                hint="List the staff signers' addresses (see docs/chain.md, key ceremony).",
                id="energysphere.E106",
            )
        )
    elif dev_addresses.intersection(signers):
        errors.append(
            Error(
                "CHAIN_MULTISIG_SIGNERS contains anvil's public development accounts.",
                id="energysphere.E107",
            )
        )
    elif settings.CHAIN_MULTISIG_THRESHOLD < 2 or len(signers) < settings.CHAIN_MULTISIG_THRESHOLD:
        errors.append(
            Error(
                f"CHAIN_MULTISIG_THRESHOLD is {settings.CHAIN_MULTISIG_THRESHOLD} for "
                f"{len(signers)} signers: it must be at least 2 and at most the signer count.",
                id="energysphere.E108",
            )
        )
    custody = settings.CHAIN_CUSTODY_SECRET
    if not custody or custody == DEVELOPMENT_CUSTODY_SECRET:
        errors.append(
            Error(
                "CHAIN_CUSTODY_SECRET is empty or the public development secret: anyone could "
                "derive every member's custodial key.",
                hint="Set CHAIN_CUSTODY_SECRET to at least 32 random bytes kept in a secret store.",
                id="energysphere.E109",
            )
        )
    return errors


def _external_signer(conf: dict, name: str) -> tuple[str | None, str]:
    """(address, problem) of an external signer's configuration."""
    from urllib.parse import urlsplit

    url = urlsplit(conf["signer_url"])
    try:
        address = to_checksum_address(conf.get("address") or "").lower()
    except ValueError:
        return None, f"{name}_SIGNER_URL needs {name}_ADDRESS, the address its key signs as."
    loopback = url.hostname in ("localhost", "127.0.0.1", "::1")
    if url.scheme == "https" or (url.scheme == "http" and loopback):
        return address, ""
    return address, f"{name}_SIGNER_URL must be https:// (or http:// on this host only)."


def _address_of_key(key: str) -> str | None:
    try:
        return Account.from_key(key).address.lower()
    except Exception:  # noqa: BLE001 - an invalid key is reported as raw hex anyway
        return None


def _address_of_keystore(path: str) -> str | None:
    try:
        data = json.loads(Path(path).read_text())
        return to_checksum_address("0x" + str(data["address"]).removeprefix("0x")).lower()
    except (OSError, ValueError, KeyError, TypeError):
        return None


@deployment_check
def chain_duty_keys_check(app_configs=None, **kwargs) -> list[Error]:
    from apps.chain.keys import development_addresses

    errors: list[Error] = []
    dev = development_addresses()
    seen: dict[str, str] = {}
    if settings.CHAIN_OPERATOR_KEY:
        errors.append(
            Error(
                "CHAIN_OPERATOR_KEY is a raw hex private key in the environment.",
                hint="Use CHAIN_KEYSTORE_PATH + CHAIN_KEYSTORE_PASSWORD for the deployer key.",
                id="chain.E001",
            )
        )
    for duty in KEY_DUTIES:
        conf = (settings.CHAIN_DUTY_KEYS or {}).get(duty) or {}
        name = f"CHAIN_{duty.upper()}"
        hint = f"Configure {name}_KEYSTORE_PATH and {name}_KEYSTORE_PASSWORD (docs/chain.md)."
        if conf.get("signer_url"):
            address, problem = _external_signer(conf, name)
            if problem:
                errors.append(Error(problem, hint=hint, id="chain.E006"))
            if conf.get("key"):
                errors.append(
                    Error(f"{name}_KEY is a raw hex private key.", hint=hint, id="chain.E001")
                )
        elif conf.get("key"):
            errors.append(
                Error(f"{name}_KEY is a raw hex private key.", hint=hint, id="chain.E001")
            )
            address = _address_of_key(conf["key"])
        elif conf.get("keystore_path"):
            address = _address_of_keystore(conf["keystore_path"])
            if address is None:
                errors.append(
                    Error(
                        f"{name}_KEYSTORE_PATH is not a readable V3 keystore.",
                        hint=hint,
                        id="chain.E004",
                    )
                )
        else:
            errors.append(
                Error(
                    f"No key configured for the {duty} duty (the local chain would fall back "
                    "to a development key).",
                    hint=hint,
                    id="chain.E003",
                )
            )
            continue
        if address is None:
            continue
        if address in dev:
            errors.append(
                Error(
                    f"The {duty} duty key {address} is a well-known development key.",
                    hint=hint,
                    id="chain.E002",
                )
            )
        if address in seen:
            errors.append(
                Error(
                    f"The {duty} and {seen[address]} duties share one key; each needs its own.",
                    hint=hint,
                    id="chain.E005",
                )
            )
        seen[address] = duty
    return errors
