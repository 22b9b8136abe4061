"""Secret-ballot receipts and the ballots' Merkle leaves (pure; no Django import).

A voter gets a random 32-byte secret with their ballot. The ballot store keeps only the choice
and ``receipt_hash = keccak256(secret ‖ choice ‖ uint256(proposal id))``; who cast it is kept
elsewhere (the participation), without the choice. At close the ballots' leaves
``keccak256(keccak256(abi.encode(uint256 proposal, bytes32 receipt_hash, uint8 choice)))``
(OpenZeppelin StandardMerkleTree leaves) in ascending receipt-hash order form the tree whose root
is anchored on chain; a voter recomputes their receipt hash from the secret and checks the proof.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi import encode as abi_encode

from apps.chain.merkle import MerkleTree, build, keccak256

#: Choice → its code in the leaf.
CHOICE_CODES = {"yes": 1, "no": 2, "abstain": 3}
SECRET_BYTES = 32


def receipt_hash(*, secret: bytes, choice: str, proposal_id: int) -> bytes:
    if len(secret) != SECRET_BYTES or choice not in CHOICE_CODES:
        raise ValueError("a receipt needs a 32-byte secret and a known choice")
    return keccak256(secret + choice.encode("ascii") + proposal_id.to_bytes(32, "big"))


def ballot_leaf(*, proposal_id: int, receipt: bytes, choice: str) -> bytes:
    encoded = abi_encode(
        ["uint256", "bytes32", "uint8"], [proposal_id, receipt, CHOICE_CODES[choice]]
    )
    return keccak256(keccak256(encoded))


def ballots_tree(proposal_id: int, ballots: Sequence[tuple[bytes, str]]) -> MerkleTree:
    """The tree over (receipt hash, choice) pairs, in ascending receipt-hash order."""
    ordered = sorted(ballots)
    return build([ballot_leaf(proposal_id=proposal_id, receipt=r, choice=c) for r, c in ordered])


def leaf_index(ballots: Sequence[tuple[bytes, str]], receipt: bytes) -> int | None:
    ordered = sorted(ballots)
    for i, (r, _c) in enumerate(ordered):
        if r == receipt:
            return i
    return None
