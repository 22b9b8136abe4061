from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given
from hypothesis import strategies as st

from apps.meters.signing import (
    SignedFields,
    canonical_encoding,
    reading_digest,
    recover_address,
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
