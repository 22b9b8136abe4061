"""Signed device commands and acknowledgements (pure: no Django).

A set-point command is signed by the cooperative's command key; a device accepts it only when
the signature recovers the cooperative's command address, the command names the device, it has
not expired and its sequence number is higher than the last one the device accepted (replay
window). The device's acknowledgement is signed by the device key (its meter's secp256k1 key)
and names the command and its sequence number; the server accepts only an ack that recovers the
device's address and matches the command.

The signature scheme is the meters app's, shared with device status messages
(`apps.meters.device_messages`: personal_sign of keccak256(domain ‖ kind ‖ canonical JSON)).
"""

from __future__ import annotations

from apps.meters.device_messages import (
    ACK,
    COMMAND,
    DOMAIN,
    CommandVerifier,
    message_digest,
    message_signer,
    sign_message,
)

__all__ = [
    "ACK",
    "COMMAND",
    "DOMAIN",
    "CommandVerifier",
    "message_digest",
    "message_signer",
    "sign_message",
]
