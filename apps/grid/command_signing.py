"""Signed device commands and acknowledgements (pure: no Django).

A set-point command is signed by the cooperative's command key; a device accepts it only when
the signature recovers the cooperative's command address, the command names the device, it has
not expired and its sequence number is higher than the last one the device accepted (replay
window). The device's acknowledgement is signed by the device key (its meter's secp256k1 key)
and names the command and its sequence number; the server accepts only an ack that recovers the
device's address and matches the command.

Signature: secp256k1 personal_sign (65 bytes r ‖ s ‖ v, hex with 0x) of keccak256(domain ‖ kind ‖
canonical JSON of the document without "signature"), canonical = sorted keys, no spaces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from apps.meters.signing import keccak256, recover_address, sign_digest

DOMAIN = b"energysphere:device-message:v1"
COMMAND = "command"
ACK = "ack"


def message_digest(kind: str, doc: dict) -> bytes:
    body = {k: v for k, v in doc.items() if k != "signature"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return keccak256(DOMAIN + b":" + kind.encode() + b":" + canonical.encode())


def sign_message(kind: str, doc: dict, private_key: bytes) -> dict:
    signature = sign_digest(private_key, message_digest(kind, doc))
    return {**doc, "signature": "0x" + signature.hex()}


def message_signer(kind: str, doc: dict) -> str | None:
    """Checksummed address that signed `doc`, or None when unsigned or malformed."""
    raw = doc.get("signature")
    if not isinstance(raw, str):
        return None
    try:
        return recover_address(message_digest(kind, doc), bytes.fromhex(raw.removeprefix("0x")))
    except ValueError:
        return None


@dataclass
class CommandVerifier:
    """What a device runs before applying a command (the demo devices and tests use it)."""

    serial: str
    cooperative_address: str
    last_seq: int = 0
    seen: set[str] = field(default_factory=set)

    def refusal(self, doc: dict, now: datetime) -> str | None:
        """None when the command may be applied (and remembers it), else the reason."""
        signer = message_signer(COMMAND, doc)
        if signer is None:
            return "unsigned"
        if signer.lower() != self.cooperative_address.lower():
            return "not signed by the cooperative"
        if doc.get("serial") != self.serial:
            return "for another device"
        try:
            expires = datetime.fromisoformat(str(doc["expires_at"]))
            seq = int(doc["seq"])
        except (KeyError, TypeError, ValueError):
            return "no sequence number or expiry"
        if expires <= now:
            return "expired"
        if seq <= self.last_seq or doc.get("command_id") in self.seen:
            return "replayed"
        self.last_seq = seq
        self.seen.add(str(doc.get("command_id")))
        return None
