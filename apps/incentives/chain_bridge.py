"""The incentives app's only door to the chain: the transaction outbox (apps.chain).

Intents are submitted inside the caller's transaction (a transactional outbox), so a rolled-back
certificate or reward never reaches the chain.
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak

from apps.accounts.models import Member
from apps.chain.services import chain_intent_submit, member_chain_address


def member_address(member: Member) -> str:
    """The member's chain address: the linked wallet, else the custodial address."""
    return member_chain_address(member)


def submit(*, intent: str, payload: dict[str, Any], idempotency_key: str) -> str:
    """Queue one on-chain intent through the outbox; returns its reference (the intent's id)."""
    row = chain_intent_submit(intent=intent, payload=payload, idempotency_key=idempotency_key)
    return str(row.pk)


def hash32(text: str) -> str:
    """keccak256 of a UTF-8 string as a 0x-prefixed bytes32 (no personal data goes on chain)."""
    return "0x" + keccak(text.encode("utf-8")).hex()
