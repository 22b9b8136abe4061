"""Canonical encoding and secp256k1 signatures of meter readings (pure; no Django import).

A reading is signed at the device so it can be verified in Python and on chain (``ecrecover``):

    digest = keccak256(abi.encode(
        string serial, uint64 seq, uint64 intervalStart, uint32 intervalSeconds,
        uint64 importWh, uint64 exportWh, uint64 registerImportWh, uint64 registerExportWh,
        uint32 status))
    signature = personal_sign(digest)  # EIP-191 over the 32-byte digest

``intervalStart`` is Unix seconds (UTC). The 65-byte signature is r ‖ s ‖ v with v in {27, 28}.
In Solidity: ``ECDSA.recover(MessageHashUtils.toEthSignedMessageHash(digest), sig)``.

The ABI encoding is written out by hand (all fields but ``serial`` are static 32-byte words) because
``eth_abi.encode`` costs more than the signature check itself at ingest rates; a test checks it
against ``eth_abi``.
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve
import sha3  # safe-pysha3: Keccak-256 in C, ~3x pycryptodome's per-call cost at ingest rates

_EIP191_PREFIX = b"\x19Ethereum Signed Message:\n32"
_HEAD_WORDS = 9  # one offset word for the string + eight static words
MAX_UINT64 = 2**64 - 1
MAX_UINT32 = 2**32 - 1


def keccak256(data: bytes) -> bytes:
    return sha3.keccak_256(data).digest()


@dataclass(frozen=True, slots=True)
class SignedFields:
    serial: str
    seq: int
    interval_start: int  # Unix seconds, UTC
    interval_seconds: int
    import_wh: int
    export_wh: int
    register_import_wh: int = 0
    register_export_wh: int = 0
    status: int = 0


def signed_fields_of(reading: object) -> SignedFields:
    """The signed fields of any object carrying them as attributes (ingest items, stored rows)."""
    return SignedFields(
        reading.serial,  # type: ignore[attr-defined]
        reading.seq,  # type: ignore[attr-defined]
        reading.interval_start,  # type: ignore[attr-defined]
        reading.interval_seconds,  # type: ignore[attr-defined]
        reading.import_wh,  # type: ignore[attr-defined]
        reading.export_wh,  # type: ignore[attr-defined]
        reading.register_import_wh,  # type: ignore[attr-defined]
        reading.register_export_wh,  # type: ignore[attr-defined]
        reading.status,  # type: ignore[attr-defined]
    )


def _word(value: int, limit: int = MAX_UINT64) -> bytes:
    if not 0 <= value <= limit:
        raise ValueError(f"value {value} outside unsigned range")
    return value.to_bytes(32, "big")


def canonical_encoding(f: SignedFields) -> bytes:
    """Exactly ``abi.encode(...)`` of the fields listed in the module docstring."""
    serial = f.serial.encode("utf-8")
    padded = serial + b"\x00" * (-len(serial) % 32)
    return b"".join(
        (
            _word(_HEAD_WORDS * 32),
            _word(f.seq),
            _word(f.interval_start),
            _word(f.interval_seconds, MAX_UINT32),
            _word(f.import_wh),
            _word(f.export_wh),
            _word(f.register_import_wh),
            _word(f.register_export_wh),
            _word(f.status, MAX_UINT32),
            _word(len(serial)),
            padded,
        )
    )


def reading_digest(f: SignedFields) -> bytes:
    return keccak256(canonical_encoding(f))


def eth_signed_hash(digest: bytes) -> bytes:
    return keccak256(_EIP191_PREFIX + digest)


def address_from_public_key(public_key: bytes) -> str:
    """Checksummed Ethereum address from a 64- or 65-byte uncompressed public key."""
    raw = public_key[1:] if len(public_key) == 65 else public_key
    if len(raw) != 64:
        public = coincurve.PublicKey(public_key).format(compressed=False)[1:]
        raw = public
    return to_checksum_address(keccak256(raw)[-20:].hex())


def to_checksum_address(hex_address: str) -> str:
    """EIP-55 checksum."""
    address = hex_address.lower().removeprefix("0x")
    hashed = keccak256(address.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(hashed[i], 16) >= 8 else c for i, c in enumerate(address)
    )


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """65-byte r ‖ s ‖ v (v = 27/28) personal_sign signature of a 32-byte digest."""
    sig = coincurve.PrivateKey(private_key).sign_recoverable(eth_signed_hash(digest), hasher=None)
    return sig[:64] + bytes([sig[64] + 27])


def recover_address(digest: bytes, signature: bytes) -> str:
    """Address that signed `digest` (personal_sign). Raises ValueError on a malformed signature."""
    if len(signature) != 65:
        raise ValueError("signature must be 65 bytes")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise ValueError("bad signature recovery id")
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), eth_signed_hash(digest), hasher=None
        )
    except Exception as exc:  # noqa: BLE001 - coincurve raises plain Exception on bad input
        raise ValueError(f"invalid signature: {exc}") from exc
    return address_from_public_key(public.format(compressed=False))


def recover_public_key(digest: bytes, signature: bytes) -> bytes:
    """64-byte uncompressed public key (X ‖ Y) that signed `digest`; ValueError if malformed.

    Comparing keys instead of addresses saves two keccak hashes per reading at ingest rates.
    """
    if len(signature) != 65:
        raise ValueError("signature must be 65 bytes")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise ValueError("bad signature recovery id")
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), eth_signed_hash(digest), hasher=None
        )
    except Exception as exc:  # noqa: BLE001 - coincurve raises plain Exception on bad input
        raise ValueError(f"invalid signature: {exc}") from exc
    return public.format(compressed=False)[1:]


def sign_reading(private_key: bytes, fields: SignedFields) -> bytes:
    return sign_digest(private_key, reading_digest(fields))
