"""VAPID keys of Web Push (RFC 8292), from the environment.

`VAPID_PRIVATE_KEY` is the application server's P-256 private key as base64url of its 32-byte
scalar (what `web-push generate-vapid-keys` and most servers print); `VAPID_PUBLIC_KEY`, when
set, must be its uncompressed public point (base64url, the browser's `applicationServerKey`).
Without a private key (development and tests) a key is derived from SECRET_KEY, like the grid's
command key; `manage.py check --deploy` refuses that in production (apps/notifications/checks.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

# Order of the P-256 group.
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url_decode(value: str) -> bytes:
    value = value.strip()
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def is_development_key() -> bool:
    return not str(getattr(settings, "VAPID_PRIVATE_KEY", "") or "").strip()


def private_key() -> ec.EllipticCurvePrivateKey:
    raw = str(getattr(settings, "VAPID_PRIVATE_KEY", "") or "").strip()
    if raw:
        scalar = int.from_bytes(b64url_decode(raw), "big")
    else:
        digest = hmac.new(
            str(settings.SECRET_KEY).encode(), b"energysphere-vapid-development", hashlib.sha256
        ).digest()
        scalar = int.from_bytes(digest, "big") % (_P256_N - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey | None = None) -> str:
    """The uncompressed public point, base64url: the browser's `applicationServerKey`."""
    key = key or private_key()
    return b64url_encode(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
