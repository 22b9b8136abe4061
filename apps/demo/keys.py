"""Deterministic secp256k1 device keys of the demo meters (pure; no Django import).

The demo loader stores each meter's public key and address; the meter simulator signs readings
with the same private key, so both sides derive it from the serial. DEMO ONLY: anyone can derive
these keys from the public seed below — a real meter's key is generated inside the device.
"""

from __future__ import annotations

import coincurve

from apps.meters.signing import address_from_public_key, keccak256

DEMO_KEY_SEED = b"energysphere-demo-cooperative-device-keys-v1"
# Order of the secp256k1 group: a private key is an integer in [1, n - 1].
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def demo_device_key(serial: str) -> bytes:
    """32-byte private key of the demo meter `serial`: keccak256(seed || serial), re-hashed in the
    (astronomically unlikely) case it falls outside [1, n - 1]."""
    digest = keccak256(DEMO_KEY_SEED + b":" + serial.encode("utf-8"))
    while not 0 < int.from_bytes(digest, "big") < _SECP256K1_N:
        digest = keccak256(digest)
    return digest


def demo_public_key(serial: str) -> bytes:
    """65-byte uncompressed public key (0x04 || X || Y)."""
    return coincurve.PrivateKey(demo_device_key(serial)).public_key.format(compressed=False)


def demo_device_identity(serial: str) -> tuple[str, str]:
    """(public key hex as stored in Meter.public_key, checksummed address)."""
    public = demo_public_key(serial)
    return public.hex(), address_from_public_key(public)


def demo_charger_password(ocpp_id: str) -> str:
    """HTTP Basic password (OCPP security profile 1) of the demo charge point `ocpp_id`: 32 hex
    characters of keccak256(seed || "ocpp" || id). DEMO ONLY, like the device keys above."""
    return keccak256(DEMO_KEY_SEED + b":ocpp:" + ocpp_id.encode("utf-8")).hex()[:32]


def demo_charge_point_id(device_serial: str) -> str:
    """OCPP id of the demo charger that drives the EV device `device_serial`."""
    return f"CP-{device_serial}"


DEMO_SPARE_CHARGE_POINT = "CP-DEMO-SPARE"  # registered, driven by no simulator


def demo_charging_token(member_number: str) -> str:
    """The demo member's RFID token (OCPP idTag): "RFID-" and the membership number."""
    return f"RFID-{member_number}"


DEMO_SPARE_VEN = "VEN-DEMO-SPARE"  # provisioned, driven by no simulator


def demo_ven_name(connection_point_code: str) -> str:
    """OpenADR VEN name of the demo site `connection_point_code`."""
    return f"VEN-{connection_point_code}"
