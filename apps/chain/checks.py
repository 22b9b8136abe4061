"""Deployment checks of the chain keys (``manage.py check --deploy``).

Every duty (``apps.chain.intents.DUTIES``) must sign with its own encrypted keystore in
production: a raw hex key in the environment, a well-known development key (the public anvil
mnemonic or ANVIL_MNEMONIC), a missing key or one key shared by two duties is an error. The
deployer's CHAIN_OPERATOR_KEY must not be raw hex either. Keystores are not decrypted here: the
address stored in a V3 keystore is enough to recognise a development key.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register
from eth_account import Account
from eth_utils import to_checksum_address

from apps.chain.intents import DUTIES


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


@register(Tags.security, deploy=True)
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
    for duty in DUTIES:
        conf = (settings.CHAIN_DUTY_KEYS or {}).get(duty) or {}
        name = f"CHAIN_{duty.upper()}"
        hint = f"Configure {name}_KEYSTORE_PATH and {name}_KEYSTORE_PASSWORD (docs/chain.md)."
        if conf.get("key"):
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
