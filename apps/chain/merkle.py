"""OpenZeppelin-compatible Merkle trees (pure Python; no Django import).

Compatible with OpenZeppelin's ``MerkleProof.verify`` (sorted-pair hashing: each parent is
``keccak256(min(a, b) ‖ max(a, b))``) and with the leaf format of ``StandardMerkleTree`` (leaves
are double-hashed, ``keccak256(keccak256(abi.encode(values)))``, so a leaf can never be confused
with an inner node — the second-preimage defence OZ documents).

The tree layout is OZ's ``@openzeppelin/merkle-tree`` ``makeMerkleTree``: a flat array of
``2n - 1`` nodes, leaves stored at the end in reverse order, node ``i`` has children ``2i + 1``
and ``2i + 2``. Unlike ``StandardMerkleTree.of`` we do not sort the leaves: the tree is
deterministic for a given leaf order (callers pass leaves in a canonical order), so a reading's
position in the batch is stable. One leaf and odd numbers of leaves are handled by the layout
(the root of a one-leaf tree is the leaf itself; OZ verifies it with an empty proof).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from Crypto.Hash import keccak
from eth_abi import encode as abi_encode

__all__ = [
    "MerkleTree",
    "build",
    "hash_pair",
    "keccak256",
    "proof_root",
    "reading_leaf",
    "trade_leaf",
    "verify",
]


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OZ ``Hashes.commutativeKeccak256``: hash of the sorted pair."""
    return keccak256(a + b) if a < b else keccak256(b + a)


def _check_node(node: bytes) -> bytes:
    if not isinstance(node, bytes | bytearray) or len(node) != 32:
        raise ValueError("Merkle nodes are 32-byte values")
    return bytes(node)


@dataclass(frozen=True, slots=True)
class MerkleTree:
    """A built tree: ``nodes[0]`` is the root; leaves sit at ``nodes[len - 1 - i]``."""

    nodes: tuple[bytes, ...]
    leaf_count: int

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    def leaf(self, index: int) -> bytes:
        return self.nodes[self._tree_index(index)]

    def _tree_index(self, index: int) -> int:
        if not 0 <= index < self.leaf_count:
            raise IndexError(f"leaf index {index} outside 0..{self.leaf_count - 1}")
        return len(self.nodes) - 1 - index

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from the leaf up to (not including) the root."""
        i = self._tree_index(index)
        out: list[bytes] = []
        while i > 0:
            sibling = i + 1 if i % 2 == 1 else i - 1
            out.append(self.nodes[sibling])
            i = (i - 1) // 2
        return out


def build(leaves: Sequence[bytes]) -> MerkleTree:
    """Build the tree over already-hashed 32-byte leaves, in the given order."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    n = len(leaves)
    size = 2 * n - 1
    nodes: list[bytes] = [b""] * size
    for i, leaf in enumerate(leaves):
        nodes[size - 1 - i] = _check_node(leaf)
    for i in range(size - 1 - n, -1, -1):
        nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
    return MerkleTree(nodes=tuple(nodes), leaf_count=n)


def proof_root(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """OZ ``MerkleProof.processProof``."""
    node = _check_node(leaf)
    for sibling in proof:
        node = hash_pair(node, _check_node(sibling))
    return node


def verify(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """OZ ``MerkleProof.verify``."""
    try:
        return proof_root(leaf, proof) == _check_node(root)
    except ValueError:
        return False


def reading_leaf(digest: bytes) -> bytes:
    """Leaf of one meter reading.

    ``digest`` is ``apps.meters.signing.reading_digest`` over the stored fields (the hash the device
    signed). Leaf = ``keccak256(bytes.concat(keccak256(abi.encode(bytes32 digest))))``, the
    StandardMerkleTree leaf of ``[digest]`` with type ``bytes32``; MeterOracle recomputes it.
    """
    return keccak256(keccak256(_check_node(digest)))


TRADE_LEAF_TYPES = (
    "uint256",  # settlement id (the market's Settlement primary key)
    "uint256",  # trade id (the market's Trade primary key)
    "address",  # seller chain address
    "address",  # buyer chain address
    "uint64",  # delivery interval start, Unix seconds UTC
    "uint256",  # energy, Wh
    "uint256",  # amount paid by the buyer, integer minor currency units (e.g. euro cents)
)


def trade_leaf(
    *,
    settlement_id: int,
    trade_id: int,
    seller: str,
    buyer: str,
    interval_start: int,
    energy_wh: int,
    amount_minor: int,
) -> bytes:
    """Leaf of one settled trade: StandardMerkleTree leaf of the values in ``TRADE_LEAF_TYPES``.

    Solidity equivalent::

        keccak256(bytes.concat(keccak256(abi.encode(
            settlementId, tradeId, seller, buyer, intervalStart, energyWh, amountMinor))))
    """
    if energy_wh < 0 or amount_minor < 0:
        raise ValueError("energy and amount are non-negative integers")
    encoded = abi_encode(
        list(TRADE_LEAF_TYPES),
        [settlement_id, trade_id, seller, buyer, interval_start, energy_wh, amount_minor],
    )
    return keccak256(keccak256(encoded))
