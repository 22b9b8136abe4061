"""Chain app models: the transaction outbox, the contract registry, the indexer and anchors."""

from __future__ import annotations

from django.db import models

from apps.core.state import StatusModel


class ChainIntent(StatusModel, models.Model):
    """One on-chain action (the transactional outbox row).

    Lifecycle: pending → signed → sent → mined → confirmed, or → failed (kept, retryable).
    ``raw_tx`` and ``tx_hash`` are written *before* the transaction is broadcast, so after a crash
    recovery can look the hash up on chain and never sends the same intent twice.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SIGNED = "signed", "Signed"
        SENT = "sent", "Sent"
        MINED = "mined", "Mined"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"

    TRANSITIONS = {
        Status.PENDING: {Status.SIGNED, Status.FAILED},
        Status.SIGNED: {Status.SENT, Status.MINED, Status.PENDING, Status.FAILED},
        # SENT → SIGNED: re-signed with a bumped fee for the same nonce (replacement).
        Status.SENT: {Status.MINED, Status.SIGNED, Status.PENDING, Status.FAILED},
        Status.MINED: {Status.CONFIRMED, Status.SENT, Status.FAILED},
        Status.CONFIRMED: set(),
        # A failed intent is kept and can be retried (by staff or automatically).
        Status.FAILED: {Status.PENDING},
    }

    intent = models.CharField(max_length=40, db_index=True)
    payload = models.JSONField()
    idempotency_key = models.CharField(max_length=200, unique=True)
    network = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    contract_address = models.CharField(max_length=42, blank=True)
    sender = models.CharField(max_length=42, blank=True)
    nonce = models.BigIntegerField(null=True, blank=True)
    gas_limit = models.BigIntegerField(null=True, blank=True)
    max_fee_per_gas = models.DecimalField(max_digits=40, decimal_places=0, null=True, blank=True)
    max_priority_fee_per_gas = models.DecimalField(
        max_digits=40, decimal_places=0, null=True, blank=True
    )
    tx_hash = models.CharField(max_length=66, blank=True, db_index=True)
    # Every hash ever signed for this intent (fee bumps replace the tx for the same nonce).
    tx_hashes = models.JSONField(default=list, blank=True)
    raw_tx = models.TextField(blank=True, help_text="Signed raw transaction (no key material).")
    block_number = models.BigIntegerField(null=True, blank=True)
    gas_used = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    retryable = models.BooleanField(default=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["network", "status", "id"])]

    def __str__(self) -> str:
        return f"{self.intent}#{self.pk} [{self.status}]"


class ChainAccount(models.Model):
    """The nonce manager: one row per (network, sender); locked while a nonce is taken."""

    network = models.CharField(max_length=200)
    address = models.CharField(max_length=42)
    next_nonce = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["network", "address"], name="chain_account_unique")
        ]

    def __str__(self) -> str:
        return f"{self.address}@{self.network} next={self.next_nonce}"


class ContractDeployment(models.Model):
    """Contract registry: the address of each contract per network."""

    network = models.CharField(max_length=200)
    chain_id = models.BigIntegerField()
    name = models.CharField(max_length=60)
    address = models.CharField(max_length=42)
    tx_hash = models.CharField(max_length=66, blank=True)
    block_number = models.BigIntegerField(null=True, blank=True)
    bytecode_sha256 = models.CharField(max_length=64)
    deployed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["network", "name"]
        constraints = [
            models.UniqueConstraint(fields=["network", "name"], name="contract_deployment_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.network}: {self.address}"


class RetiredContract(models.Model):
    """A contract replaced by an upgrade (`chain_deploy --upgrade`): kept so the roots, anchors,
    balances and certificates it holds stay verifiable at their address (paused contracts keep
    answering their views)."""

    network = models.CharField(max_length=200)
    chain_id = models.BigIntegerField()
    name = models.CharField(max_length=60)
    address = models.CharField(max_length=42)
    bytecode_sha256 = models.CharField(max_length=64)
    deployed_block = models.BigIntegerField(null=True, blank=True)
    replaced_by = models.CharField(max_length=42)
    retired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["network", "name", "retired_at"]
        constraints = [
            models.UniqueConstraint(fields=["network", "address"], name="retired_contract_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.network}: {self.address} (retired)"


class IndexerCursor(models.Model):
    """Last block scanned by the event indexer, per network."""

    network = models.CharField(max_length=200, unique=True)
    last_block = models.BigIntegerField(default=-1)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.network} @ {self.last_block}"


class ChainEvent(models.Model):
    """A decoded contract event (unique per transaction log, so re-scans are idempotent)."""

    network = models.CharField(max_length=200)
    contract = models.CharField(max_length=60)
    name = models.CharField(max_length=60, db_index=True)
    args = models.JSONField()
    block_number = models.BigIntegerField()
    tx_hash = models.CharField(max_length=66)
    log_index = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["block_number", "log_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["network", "tx_hash", "log_index"], name="chain_event_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.contract}.{self.name} @{self.block_number}"


class MeterAnchor(models.Model):
    """Merkle root of one interval's validated readings, anchored through MeterOracle."""

    interval_start = models.DateTimeField()
    interval_seconds = models.PositiveIntegerField(default=900)
    version = models.PositiveIntegerField(default=1)
    root = models.CharField(max_length=66)
    leaf_count = models.PositiveIntegerField()
    # The leaves in tree order (32 bytes each): enough to rebuild any reading's proof.
    leaves = models.BinaryField()
    intent = models.OneToOneField(
        ChainIntent, on_delete=models.PROTECT, related_name="meter_anchor"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-interval_start", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["interval_start", "version"], name="meter_anchor_unique"
            )
        ]

    def __str__(self) -> str:
        return f"anchor {self.interval_start:%Y-%m-%d %H:%M} v{self.version} ({self.leaf_count})"


class AnchoredReading(models.Model):
    """Which reading sits at which leaf of an anchor (and the leaf as anchored)."""

    anchor = models.ForeignKey(MeterAnchor, on_delete=models.CASCADE, related_name="readings")
    meter = models.ForeignKey("meters.Meter", on_delete=models.PROTECT, related_name="+")
    interval_start = models.DateTimeField()
    index = models.PositiveIntegerField()
    leaf = models.CharField(max_length=66)
    # The reading's version when anchored (None on anchors made before it was recorded): the same
    # (meter, interval, version) must always give the same leaf.
    reading_version = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["anchor", "index"]
        constraints = [
            models.UniqueConstraint(fields=["anchor", "index"], name="anchored_reading_index"),
            models.UniqueConstraint(
                fields=["anchor", "meter", "interval_start"], name="anchored_reading_unique"
            ),
        ]
        indexes = [models.Index(fields=["meter", "interval_start"])]

    def __str__(self) -> str:
        return f"{self.meter_id}@{self.interval_start} #{self.index}"


class ChainAlert(models.Model):
    """An indexed event that nothing of ours explains: a duty key used outside the outbox, a
    duty-only event we did not send, or a privileged change not executed by the staff multisig;
    or a stored meter reading that anchoring refused because it was changed after ingest.
    Shown to staff in the admin until acknowledged."""

    event = models.OneToOneField(
        ChainEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="alert"
    )
    # Alerts not about a chain event (a stored reading that anchoring refused as tampered) carry a
    # key instead, so the same finding is raised once.
    key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    network = models.CharField(max_length=200)
    sender = models.CharField(max_length=42, blank=True)
    message = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.message
