"""The incentives app's only door to the chain: the transaction outbox (apps.chain).

Intents are submitted inside the caller's transaction (a transactional outbox), so a rolled-back
certificate or reward never reaches the chain. While the chain app is not installed (or has no
address for a member) nothing is submitted and the row keeps an empty `chain_intent_ref` (shown
in the registry and the certificate registry report).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from eth_utils import keccak


def _find(name: str, modules: tuple[str, ...]) -> Any:
    for module in modules:
        try:
            mod = import_module(module)
        except ImportError:
            continue
        func = getattr(mod, name, None)
        if func is not None:
            return func
    return None


def member_address(member) -> str | None:
    """The member's chain address (linked wallet or custodial), or None when there is none."""
    func = _find("member_chain_address", ("apps.chain.services", "apps.chain.selectors"))
    if func is not None:
        address = func(member)
        if address:
            return str(address)
    return member.wallet_address or None


def submit(*, intent: str, payload: dict[str, Any], idempotency_key: str) -> str:
    """Queue one on-chain intent through the outbox; returns its reference ('' if no chain)."""
    func = _find("chain_intent_submit", ("apps.chain.services",))
    if func is None:
        return ""
    row = func(intent=intent, payload=payload, idempotency_key=idempotency_key)
    return str(getattr(row, "pk", row) or "")


def hash32(text: str) -> str:
    """keccak256 of a UTF-8 string as a 0x-prefixed bytes32 (no personal data goes on chain)."""
    return "0x" + keccak(text.encode("utf-8")).hex()
