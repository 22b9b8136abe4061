"""Row locks of the audit app (see apps/core/locks.py)."""

from __future__ import annotations

from apps.audit.models import AuditChainHead
from apps.core.locks import lock_first

HEAD_ID = 1


def audit_chain_head_lock() -> AuditChainHead | None:
    """The chain head, locked; None while another transaction seals (it, or the next seal after
    it, chains the rows this one would have)."""
    head = lock_first(AuditChainHead.objects.filter(pk=HEAD_ID), skip_locked=True)
    if head is None and not AuditChainHead.objects.filter(pk=HEAD_ID).exists():
        AuditChainHead.objects.get_or_create(pk=HEAD_ID)  # the very first seal
        head = lock_first(AuditChainHead.objects.filter(pk=HEAD_ID), skip_locked=True)
    return head


def audit_chain_head_lock_wait() -> AuditChainHead:
    """The chain head, locked, waiting for a running seal to finish."""
    AuditChainHead.objects.get_or_create(pk=HEAD_ID)
    head = lock_first(AuditChainHead.objects.filter(pk=HEAD_ID))
    assert head is not None
    return head
