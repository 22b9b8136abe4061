from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AuditLog(models.Model):
    """Append-only record of every write a member or auditor could ask about."""

    event = models.CharField(max_length=80, db_index=True)  # an apps.audit.events.AuditEvent
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200, blank=True)  # kept if the user is erased
    target_type = models.CharField(max_length=80, blank=True, db_index=True)
    target_id = models.CharField(max_length=80, blank=True, db_index=True)
    details = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Hash chain (apps/audit/hashchain.py): the digest of actor label + details is taken when the
    # row is written; position, previous hash and row hash when it is sealed, right after its
    # transaction commits (audit_chain_seal), in one serial order under the chain head's lock.
    content_sha256 = models.CharField(max_length=64, blank=True)
    chain_seq = models.BigIntegerField(null=True, blank=True, unique=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    row_hash = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id", "created_at"]),
            models.Index(
                fields=["id"],
                name="audit_log_unsealed",
                condition=models.Q(chain_seq__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.event} {self.target_type}:{self.target_id}"
        )


class AuditChainHead(models.Model):
    """The end of the audit log's hash chain (one row): its position and row hash. Sealing locks
    it, so rows are chained one at a time in one order; verification compares the chain's last
    row with it (rows deleted from the end) and the anchored heads on chain with the chain."""

    chain_seq = models.BigIntegerField(default=0)
    row_hash = models.CharField(max_length=64, default="0" * 64)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"audit chain head #{self.chain_seq} {self.row_hash[:12]}"
