"""Second-duty approval of settlement batches (EIP-712, checked by EnergyTrading.settle).

The settlement key sends `settle`, but the contract applies a batch only with a `Settlement`
signature of a key holding APPROVER_ROLE — the settlement-approval duty
(``apps.chain.intents.APPROVAL_DUTY``), which never sends transactions. The approval covers the
settlement id, the trades' Merkle root and the hashes of the members, the netted money deltas and
the credit moves, so a stolen settlement key alone cannot rewrite balances, move credits or record
a root; a changed payload in the database no longer matches its approval either.

Domain: ``EnergyTrading`` / ``1`` / chain id / the EnergyTrading address.
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode

from apps.chain.intents import APPROVAL_DUTY, validate_payload
from apps.chain.merkle import keccak256

SETTLEMENT_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Settlement": [
        {"name": "settlementId", "type": "uint256"},
        {"name": "tradesRoot", "type": "bytes32"},
        {"name": "membersHash", "type": "bytes32"},
        {"name": "deltasHash", "type": "bytes32"},
        {"name": "creditMovesHash", "type": "bytes32"},
    ],
}


def settlement_typed_data(
    *,
    settlement_id: int,
    trades_root: bytes,
    members: list[str],
    money_deltas: list[int],
    credit_moves: list[tuple[str, str, int, int]],
    chain_id: int,
    contract: str,
) -> dict:
    """The EIP-712 message the approval key signs for one batch (EnergyTrading.settlementDigest)."""
    packed_members = b"".join(abi_encode(["address"], [m]) for m in members)
    packed_deltas = b"".join(abi_encode(["int256"], [d]) for d in money_deltas)
    moves = abi_encode(["(address,address,uint256,uint256)[]"], [list(credit_moves)])
    return {
        "types": SETTLEMENT_TYPES,
        "primaryType": "Settlement",
        "domain": {
            "name": "EnergyTrading",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": contract,
        },
        "message": {
            "settlementId": settlement_id,
            "tradesRoot": trades_root,
            "membersHash": keccak256(packed_members),
            "deltasHash": keccak256(packed_deltas),
            "creditMovesHash": keccak256(moves),
        },
    }


def settlement_approve(*, payload: dict[str, Any]) -> str:
    """0x-hex approval signature of the settlement-approval key for this payload."""
    from apps.chain import client
    from apps.chain.keys import duty_signer

    obj = validate_payload(
        "settlement_apply", {k: v for k, v in payload.items() if k != "approval"}
    )
    typed = settlement_typed_data(
        settlement_id=obj.settlement_id,
        trades_root=bytes.fromhex(obj.trades_root[2:]),
        members=obj.members,
        money_deltas=obj.money_deltas_minor,
        credit_moves=list(obj.credit_moves),
        chain_id=client.network_config().chain_id,
        contract=client.deployed_address("EnergyTrading"),
    )
    return "0x" + duty_signer(APPROVAL_DUTY).sign_typed_data(typed).hex()
