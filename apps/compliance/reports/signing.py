"""The cooperative's report-signing key: every exported report is sealed, and verification
answers FORGED for a file whose seal does not recover to the cooperative's signer.

The key is separate from the chain operator key (losing one does not expose the other). In
production it is an encrypted keystore (`REPORT_SIGNING_KEYSTORE_PATH` and
`REPORT_SIGNING_KEYSTORE_PASSWORD`, kept like the other keystores: see docs/chain.md, key
ceremony); verifiers need only the public address (`REPORT_SIGNER_ADDRESS`, printed on every
report). Locally a development key derived from a published seed signs; production refuses it
(apps/compliance/checks.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from apps.compliance.reports.document import ReportDocument, sealed_fields

DEVELOPMENT_SEED = "energysphere-local-development-report-signing"


@functools.cache
def _development_account() -> LocalAccount:
    return Account.from_key(hashlib.sha256(DEVELOPMENT_SEED.encode()).digest())


def development_signer_address() -> str:
    return _development_account().address


def report_signing_account() -> LocalAccount:
    """The key that seals reports: the configured keystore, else the development key."""
    path = settings.REPORT_SIGNING_KEYSTORE_PATH
    if not path:
        return _development_account()
    return _keystore_account(path, settings.REPORT_SIGNING_KEYSTORE_PASSWORD)


@functools.cache
def _keystore_account(path: str, password: str) -> LocalAccount:
    return Account.from_key(Account.decrypt(json.loads(Path(path).read_text()), password))


def trusted_signer_address() -> str:
    """The address a report's seal must recover to."""
    return settings.REPORT_SIGNER_ADDRESS or report_signing_account().address


def report_seal(doc: ReportDocument) -> dict[str, str]:
    """Sign the document's sealed fields; returns {"signer", "signature"} for the file."""
    account = report_signing_account()
    message = encode_defunct(primitive=sealed_fields(doc.meta()))
    signature = account.sign_message(message).signature
    return {"signer": account.address, "signature": "0x" + bytes(signature).hex()}


def report_seal_problem(meta: dict[str, Any]) -> str | None:
    """None when the file's seal is the cooperative's signature over its declared fields."""
    signature = meta.get("signature")
    if not signature:
        return "the report carries no signature of the cooperative's report-signing key"
    try:
        recovered = Account.recover_message(
            encode_defunct(primitive=sealed_fields(meta)), signature=signature
        )
    except Exception:  # noqa: BLE001 - any malformed signature is simply not ours
        return "the report's signature is malformed"
    trusted = trusted_signer_address()
    if recovered.lower() != trusted.lower():
        return (
            f"the report's seal was not made by the cooperative's report-signing key "
            f"({trusted}); it recovers to {recovered}"
        )
    return None
