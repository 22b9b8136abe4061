"""The cooperative's command key: it signs what the cooperative sends devices (the grid's set
points and DR cancellations, the meters' configuration messages); devices check signatures
against its address. The meters app holds it so that both apps/meters and apps/grid use it.
"""

from __future__ import annotations

from django.conf import settings


def cooperative_command_key() -> bytes:
    """`GRID_COMMAND_KEY` (64 hex), else derived from the deployment's SECRET_KEY (stable for
    the deployment, never stored)."""
    from apps.meters.signing import keccak256

    configured = settings.GRID_COMMAND_KEY
    if configured:
        return bytes.fromhex(configured.removeprefix("0x"))
    return keccak256(b"energysphere:grid-command-key:" + settings.SECRET_KEY.encode())


def cooperative_command_address() -> str:
    """The address devices check command and configuration signatures against."""
    import coincurve

    from apps.meters.signing import address_from_public_key

    public = coincurve.PrivateKey(cooperative_command_key()).public_key.format(compressed=False)
    return address_from_public_key(public)
