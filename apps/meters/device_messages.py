"""Signed device messages other than readings (pure: no Django): status messages and command
acknowledgements signed by the device key; commands and configuration messages signed by the
cooperative's command key (`apps.meters.command_key`), each with a sequence number and an expiry.

Signature: secp256k1 personal_sign (65 bytes r ‖ s ‖ v, hex with 0x) of keccak256(domain ‖ kind ‖
canonical JSON of the document without "signature"), canonical = sorted keys, no spaces. The
grid app's set-point commands (`apps.grid.command_signing`) use these functions.

A status message: `{"v": 1, "serial", "sent_at": <Unix seconds>, "firmware"?,
"config_version"?, "soc_pct"?, "ev_plugged"?, "ev_charging"?, "signature"}` on
`<prefix>/meters/<serial>/status`. It counts only when `status_problem` finds nothing: signed by
the meter's key, for the serial of its topic, fresh. A battery reports its state of charge
(`soc_pct`, 0–100), an EV charger whether a car is plugged in and charging (booleans); these are
inside the signature like everything else (`status_device_state` reads them).

A configuration message: `{"v": 1, "serial", "seq", "expires_at": <ISO 8601 UTC>, "interval",
"firmware_target", "config_version", "signature"}` on `<prefix>/meters/<serial>/config`
(retained); `seq` is the meter's configuration sequence number (`Meter.config_seq`, strictly
increasing). A device applies it only when `ConfigVerifier` finds nothing wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from apps.meters.signing import keccak256, recover_address, sign_digest

DOMAIN = b"energysphere:device-message:v1"
COMMAND = "command"
ACK = "ack"
STATUS = "status"
CONFIG = "config"
STATUS_MAX_AGE_S = 600  # a status older (or further ahead) than this is refused as stale


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
    except (ValueError, TypeError):
        return None


def status_problem(
    doc: object, *, topic_serial: str, device_address: str | None, now: float
) -> tuple[str, str] | None:
    """None when `doc` is a status message the device `topic_serial` signed and sent within
    STATUS_MAX_AGE_S of `now`, else (quarantine reason, detail). `device_address` is the device's
    key address (None: no such meter; "": registered without a key). One reason per check, in
    this order."""
    if not isinstance(doc, dict):
        return "malformed", "a status message is a JSON object"
    if type(doc.get("v")) is not int or doc.get("v") != 1:
        return "bad_version", f"v: {doc.get('v')!r}, expected the integer 1"
    serial, sent_at = doc.get("serial"), doc.get("sent_at")
    if not isinstance(serial, str) or type(sent_at) is not int:  # not NaN, not a float, not bool
        return "wrong_type", "serial must be a string and sent_at whole Unix seconds"
    if "signature" not in doc:
        return "missing_signature", "no signature"
    signer = message_signer(STATUS, doc)
    if signer is None:
        return "bad_signature", "signature is not 65 hex bytes"
    if device_address is None:
        return "unknown_meter", topic_serial
    if not device_address:
        return "bad_signature", f"no device key registered for {topic_serial}"
    if signer.lower() != device_address.lower():
        return "bad_signature", f"signed by {signer}"
    if serial != topic_serial:
        return "topic_mismatch", f"signed for {serial} but published on {topic_serial}'s topic"
    if abs(now - sent_at) > STATUS_MAX_AGE_S:
        return "stale", f"sent_at {sent_at} is {now - sent_at:+.0f} s from now"
    return None


def status_device_state(doc: dict) -> dict:
    """The device state a (checked) status message reports: `soc_pct` (float, clamped to
    0–100), `ev_plugged` and `ev_charging` (bool); fields of the wrong type are ignored."""
    state: dict = {}
    soc = doc.get("soc_pct")
    if isinstance(soc, int | float) and not isinstance(soc, bool) and soc == soc:  # not NaN
        state["soc_pct"] = min(max(float(soc), 0.0), 100.0)
    for name in ("ev_plugged", "ev_charging"):
        if type(doc.get(name)) is bool:
            state[name] = doc[name]
    return state


@dataclass
class CommandVerifier:
    """What a device runs before applying a command (the simulated devices and tests use it)."""

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


@dataclass
class ConfigVerifier:
    """What a device runs before applying a configuration message: signed by the cooperative's
    command key, for this device (the signed serial, and the serial of the topic it came on),
    with a sequence number above the last one applied, not expired."""

    serial: str
    cooperative_address: str
    last_seq: int = 0

    def refusal(self, doc: object, now: datetime, *, topic_serial: str) -> str | None:
        """None when the configuration may be applied (and remembers its seq), else the
        reason: unsigned, not signed by the cooperative, for another device, no sequence number
        or expiry, expired, replayed."""
        if not isinstance(doc, dict):
            return "unsigned"
        signer = message_signer(CONFIG, doc)
        if signer is None:
            return "unsigned"
        if signer.lower() != self.cooperative_address.lower():
            return "not signed by the cooperative"
        if doc.get("serial") != self.serial or topic_serial != self.serial:
            return "for another device"
        seq = doc.get("seq")
        try:
            expires = datetime.fromisoformat(str(doc["expires_at"]))
        except (KeyError, ValueError):
            return "no sequence number or expiry"
        if type(seq) is not int or expires.tzinfo is None:
            return "no sequence number or expiry"
        if expires <= now:
            return "expired"
        if seq <= self.last_seq:
            return "replayed"
        self.last_seq = seq
        return None
