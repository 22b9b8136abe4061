import coincurve
import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given
from hypothesis import strategies as st

from apps.meters.signing import (
    SignatureChecker,
    SignedFields,
    canonical_encoding,
    reading_digest,
    recover_address,
    recover_public_key,
    sign_reading,
)

TYPES = ["string", "uint64", "uint64", "uint32", "uint64", "uint64", "uint64", "uint64", "uint32"]
u64 = st.integers(0, 2**64 - 1)
u32 = st.integers(0, 2**32 - 1)


@given(st.text(min_size=1, max_size=40), u64, u64, u32, u64, u64, u64, u64, u32)
def test_canonical_encoding_is_abi_encode(serial, seq, start, length, imp, exp, ri, re_, status):
    fields = SignedFields(serial, seq, start, length, imp, exp, ri, re_, status)
    expected = encode(TYPES, [serial, seq, start, length, imp, exp, ri, re_, status])
    assert canonical_encoding(fields) == expected


def test_signature_matches_eth_account_and_recovers_device_address():
    account = Account.create()
    fields = SignedFields("MTR-0001", 7, 1_700_000_100, 900, 250, 0, 10_250, 0, 0)
    signature = sign_reading(bytes(account.key), fields)
    digest = reading_digest(fields)
    reference = Account.sign_message(encode_defunct(primitive=digest), account.key)
    assert signature == bytes(reference.signature)
    assert recover_address(digest, signature) == account.address
    tampered = SignedFields("MTR-0001", 7, 1_700_000_100, 900, 251, 0, 10_250, 0, 0)
    assert recover_address(reading_digest(tampered), signature) != account.address


def _signed(account, fields: SignedFields) -> tuple[bytes, bytes, bytes]:
    """(digest, signature, 64-byte public key) of a reading signed by `account`."""
    signature = sign_reading(bytes(account.key), fields)
    public = coincurve.PrivateKey(bytes(account.key)).public_key.format(compressed=False)[1:]
    return reading_digest(fields), signature, public


@given(u64, u64, u64, u64)
def test_signature_checker_accepts_exactly_what_recovers_to_the_registered_key(
    seq, start, imp, exp
):
    device, other = Account.create(), Account.create()
    fields = SignedFields("MTR-0001", seq, start, 900, imp, exp, 0, 0, 0)
    digest, signature, public = _signed(device, fields)
    other_public = _signed(other, fields)[2]
    checker = SignatureChecker()
    assert recover_public_key(digest, signature) == public
    assert checker.signed_by(digest, signature, public)
    assert not checker.signed_by(digest, signature, other_public)  # another meter's key
    tampered = reading_digest(SignedFields("MTR-0001", seq, start, 900, imp, exp, 1, 0, 0))
    assert not checker.signed_by(tampered, signature, public)


def test_signature_checker_refuses_malformed_signatures_like_recovery_does():
    device = Account.create()
    digest, signature, public = _signed(device, SignedFields("MTR-0002", 1, 900, 900, 5, 0))
    checker = SignatureChecker()
    flipped_v = signature[:64] + bytes([55 - signature[64]])  # 27 ↔ 28: another key recovers
    assert not checker.signed_by(digest, flipped_v, public)
    for bad, message in (
        (signature[:64], "65 bytes"),
        (signature[:64] + b"\x05", "recovery id"),
        (b"\xff" * 32 + signature[32:], "invalid signature"),  # r ≥ the curve order
        (bytes(32) + signature[32:], "invalid signature"),  # r = 0
    ):
        with pytest.raises(ValueError, match=message):
            checker.signed_by(digest, bad, public)
        if len(bad) == 65 and bad[64] in (27, 28):
            with pytest.raises(ValueError):
                recover_public_key(digest, bad)  # the reference check refuses it too
