"""The audit log's hash chain: canonical serialisation and hashes (pure; no Django import).

Each sealed row carries its position ``chain_seq`` (1, 2, 3, … without gaps), the ``row_hash`` of
the row before it (``prev_hash``; 64 zeros for the first) and its own ``row_hash``:

    content_sha256 = SHA-256(canonical JSON of {"actor_label", "details"})
    row_hash       = SHA-256(canonical JSON of [chain_seq, id, created_at (UTC ISO 8601), event,
                                                target_type, target_id, content_sha256, prev_hash])

The row hash commits to the *digest* of the personal-data-bearing fields (actor label and
details), not to their text: erasure may scrub those fields (``audit_details_scrub``) and the
chain still verifies, because the scrub itself is recorded as an ``audit_log.redacted`` row that
commits to each scrubbed row's new content digest. A row whose content no longer matches its
digest, with no later redaction row committing to the new content, was edited.

The actor link (a foreign key set to NULL when a user is deleted) is not hashed; the actor label
kept beside it is.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def content_digest(*, actor_label: str, details: Any) -> str:
    """SHA-256 hex over the row's actor label and details (as stored: JSON-decoded)."""
    return hashlib.sha256(_canonical({"actor_label": actor_label, "details": details})).hexdigest()


def row_digest(
    *,
    chain_seq: int,
    row_id: int,
    created_at: datetime,
    event: str,
    target_type: str,
    target_id: str,
    content_sha256: str,
    prev_hash: str,
) -> str:
    """SHA-256 hex of one chained row."""
    fields = [
        chain_seq,
        row_id,
        created_at.astimezone(UTC).isoformat(),
        event,
        target_type,
        target_id,
        content_sha256,
        prev_hash,
    ]
    return hashlib.sha256(_canonical(fields)).hexdigest()
