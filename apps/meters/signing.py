"""Canonical encoding and secp256k1 signatures of meter readings (pure; no Django import).

A reading is signed at the device so it can be verified in Python and on chain (``ecrecover``):

    digest = keccak256(abi.encode(
        string serial, uint64 seq, uint64 intervalStart, uint32 intervalSeconds,
        uint64 importWh, uint64 exportWh, uint64 registerImportWh, uint64 registerExportWh,
        uint32 status))
    signature = personal_sign(digest)  # EIP-191 over the 32-byte digest

``intervalStart`` is Unix seconds (UTC). The 65-byte signature is r ‖ s ‖ v with v in {27, 28}.
In Solidity: ``ECDSA.recover(MessageHashUtils.toEthSignedMessageHash(digest), sig)``.

The ABI encoding is one ``struct`` call (all fields but ``serial`` are static 32-byte words) because
``eth_abi.encode`` costs more than the signature check itself at ingest rates; a property test
checks it against ``eth_abi``. `SignatureChecker` checks signatures against registered keys with
direct libsecp256k1 calls (coincurve's own binding), without the per-call objects of coincurve's
Python API; a test checks it against eth_account.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import coincurve
import sha3  # safe-pysha3: Keccak-256 in C, ~3x pycryptodome's per-call cost at ingest rates
from coincurve._libsecp256k1 import ffi, lib  # the cffi binding coincurve itself calls
from coincurve.context import GLOBAL_CONTEXT

_EIP191_PREFIX = b"\x19Ethereum Signed Message:\n32"
_HEAD_WORDS = 9  # one offset word for the string + eight static words
MAX_UINT64 = 2**64 - 1
MAX_UINT32 = 2**32 - 1


# Half the secp256k1 group order: the largest `s` of a canonical (low-s) signature.
SECP256K1_HALF_N = bytes.fromhex("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0")


def signature_problem(signature: bytes) -> str | None:
    """Why a 65-byte r ‖ s ‖ v signature is not canonical, or None if it is.

    The rule OpenZeppelin's `ECDSA.recover` applies in `MeterOracle` (so a reading accepted here
    can always be verified on chain): v is 27 or 28, and s is in the lower half of the curve
    order (the malleated twin (r, n − s) of a valid signature is refused).
    """
    if len(signature) != 65:
        return "sig: expected 65 bytes"
    if signature[64] not in (27, 28):
        return f"sig: recovery id v = {signature[64]}, expected 27 or 28"
    if signature[32:64] > SECP256K1_HALF_N:
        return "sig: s in the upper half of the curve order (malleable)"
    return None


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

    def abi_values(self) -> tuple:
        """The fields in ABI order (the encoding's, and the contracts' reading tuple)."""
        return (
            self.serial,
            self.seq,
            self.interval_start,
            self.interval_seconds,
            self.import_wh,
            self.export_wh,
            self.register_import_wh,
            self.register_export_wh,
            self.status,
        )


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


# abi.encode head: the string's offset word, then 32-byte big-endian words (uint64 / uint32 are
# left-padded with zeros; struct raises on a negative or too large value), then the string's length.
_HEAD = struct.Struct(">24xQ24xQ24xQ28xI24xQ24xQ24xQ24xQ28xI24xQ")


def encode_fields(
    serial: str,
    seq: int,
    interval_start: int,
    interval_seconds: int,
    import_wh: int,
    export_wh: int,
    register_import_wh: int,
    register_export_wh: int,
    status: int,
) -> bytes:
    """Exactly ``abi.encode(...)`` of the fields listed in the module docstring; ValueError if a
    value is outside its unsigned type."""
    raw = serial.encode("utf-8")
    try:
        head = _HEAD.pack(
            _HEAD_WORDS * 32,
            seq,
            interval_start,
            interval_seconds,
            import_wh,
            export_wh,
            register_import_wh,
            register_export_wh,
            status,
            len(raw),
        )
    except struct.error as exc:
        raise ValueError(f"value outside unsigned range: {exc}") from exc
    return head + raw + b"\x00" * (-len(raw) % 32)


def canonical_encoding(f: SignedFields) -> bytes:
    """Exactly ``abi.encode(...)`` of the fields listed in the module docstring."""
    return encode_fields(*f.abi_values())


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


def _recovery_id(signature: bytes) -> int:
    """v of a 65-byte r ‖ s ‖ v signature as 0/1 (27/28 accepted); ValueError if malformed."""
    if len(signature) != 65:
        raise ValueError("signature must be 65 bytes")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise ValueError("bad signature recovery id")
    return v


def recover_address(digest: bytes, signature: bytes) -> str:
    """Address that signed `digest` (personal_sign). Raises ValueError on a malformed signature."""
    return address_from_public_key(recover_public_key(digest, signature))


def recover_public_key(digest: bytes, signature: bytes) -> bytes:
    """64-byte uncompressed public key (X ‖ Y) that signed `digest`; ValueError if malformed."""
    v = _recovery_id(signature)
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), eth_signed_hash(digest), hasher=None
        )
    except Exception as exc:  # noqa: BLE001 - coincurve raises plain Exception on bad input
        raise ValueError(f"invalid signature: {exc}") from exc
    return public.format(compressed=False)[1:]


def sign_reading(private_key: bytes, fields: SignedFields) -> bytes:
    return sign_digest(private_key, reading_digest(fields))


class SignatureChecker:
    """Checks personal_sign signatures against registered public keys, for many readings in a row.

    The same check as `recover_public_key(digest, signature) == key`, with libsecp256k1 called
    directly through coincurve's binding: keys are parsed once, the recovery buffers are reused
    and the recovered key is compared in C (`secp256k1_ec_pubkey_cmp`), which saves coincurve's
    per-call Python objects. Parsed keys are kept for the process (a worker sees the same meters
    batch after batch). An instance is not thread-safe (one per batch or thread).
    """

    _keys: dict[bytes, object] = {}  # 64-byte key → parsed secp256k1_pubkey, process-wide
    _MAX_KEYS = 200_000

    def __init__(self) -> None:
        self._ctx = GLOBAL_CONTEXT.ctx
        self._sig = ffi.new("secp256k1_ecdsa_recoverable_signature *")
        self._recovered = ffi.new("secp256k1_pubkey *")

    def _parsed(self, public_key: bytes):
        parsed = self._keys.get(public_key)
        if parsed is None:
            parsed = ffi.new("secp256k1_pubkey *")
            if not lib.secp256k1_ec_pubkey_parse(self._ctx, parsed, b"\x04" + public_key, 65):
                raise ValueError("invalid registered public key")
            if len(self._keys) >= self._MAX_KEYS:
                self._keys.clear()
            self._keys[public_key] = parsed
        return parsed

    def signed_by(self, digest: bytes, signature: bytes, public_key: bytes) -> bool:
        """Whether `signature` over `digest` recovers to `public_key` (64-byte X ‖ Y).
        ValueError if the signature is malformed, not canonical or recovers to no key at all."""
        problem = signature_problem(signature)
        if problem:
            raise ValueError(problem)
        v = signature[64] - 27
        if not lib.secp256k1_ecdsa_recoverable_signature_parse_compact(
            self._ctx, self._sig, signature, v
        ):
            raise ValueError("invalid signature: r or s out of range")
        if not lib.secp256k1_ecdsa_recover(
            self._ctx, self._recovered, self._sig, eth_signed_hash(digest)
        ):
            raise ValueError("invalid signature: no public key recovers from it")
        return (
            lib.secp256k1_ec_pubkey_cmp(self._ctx, self._recovered, self._parsed(public_key)) == 0
        )
