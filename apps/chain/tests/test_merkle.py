"""The Merkle engine: OZ-compatible roots and proofs (pure; no database)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.chain import merkle
from apps.meters.signing import SignedFields, reading_digest

leaves32 = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40)


def _leaf(i: int) -> bytes:
    return merkle.reading_leaf(merkle.keccak256(i.to_bytes(8, "big")))


def test_one_leaf_tree_has_the_leaf_as_root_and_an_empty_proof():
    leaf = _leaf(1)
    tree = merkle.build([leaf])
    assert tree.root == leaf
    assert tree.proof(0) == []
    assert merkle.verify(leaf, [], tree.root)


def test_two_leaves_hash_as_a_sorted_pair():
    a, b = _leaf(1), _leaf(2)
    expected = merkle.keccak256(min(a, b) + max(a, b))
    assert merkle.build([a, b]).root == expected
    assert merkle.build([b, a]).root == expected  # commutative pair hashing (OZ)


@given(leaves32)
@settings(max_examples=60, deadline=None)
def test_every_leaf_proves_against_the_root_and_a_changed_leaf_does_not(leaves):
    tree = merkle.build(leaves)
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        assert merkle.verify(leaf, proof, tree.root)
        forged = bytes([leaf[0] ^ 1]) + leaf[1:]
        if forged not in leaves:
            assert not merkle.verify(forged, proof, tree.root)


def test_the_tree_is_deterministic_for_a_leaf_order():
    leaves = [_leaf(i) for i in range(7)]
    assert merkle.build(leaves).root == merkle.build(list(leaves)).root


def test_reading_leaf_is_the_double_hashed_digest():
    digest = reading_digest(SignedFields("M-1", 1, 1_700_000_100, 900, 120, 0))
    assert merkle.reading_leaf(digest) == merkle.keccak256(merkle.keccak256(digest))


def test_ten_thousand_leaves_give_short_verifiable_proofs():
    # Build time is a benchmark figure (bench_chain), not a test assertion.
    leaves = [_leaf(i) for i in range(10_000)]
    tree = merkle.build(leaves)
    assert merkle.verify(leaves[9_999], tree.proof(9_999), tree.root)
    assert len(tree.proof(0)) <= 14
