"""Row locks of the compliance app (see apps/core/locks.py)."""

from __future__ import annotations

from apps.compliance.models import ErasureRequest
from apps.core.locks import lock_row


def erasure_request_lock(request_id: int) -> ErasureRequest:
    return lock_row(ErasureRequest.objects.all(), request_id)
