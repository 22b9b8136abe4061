from __future__ import annotations

from django.db import models

from apps.core.state import StatusModel


class Meter(models.Model):
    """A smart meter with its secp256k1 device key (the same curve as Ethereum)."""

    class Direction(models.TextChoices):
        IMPORT = "import", "Import (consumption only)"
        EXPORT = "export", "Export (generation only)"
        BIDIRECTIONAL = "bidirectional", "Bidirectional"

    class AssetKind(models.TextChoices):
        HOUSEHOLD = "household", "Household load"
        PV = "pv", "Rooftop PV"
        BATTERY = "battery", "Battery"
        EV = "ev", "EV charger"
        HEAT_PUMP = "heat_pump", "Heat pump"
        SHARED_PV = "shared_pv", "Shared PV plant"
        SHARED_WIND = "shared_wind", "Shared wind plant"

    serial = models.CharField(max_length=40, unique=True)
    member = models.ForeignKey(
        "accounts.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="meters"
    )
    # Start of the current member's occupancy: readings before it belong to the previous
    # occupant and are never shown to (or settled for) this member. None: the member has had the
    # meter since its first reading.
    member_since = models.DateTimeField(null=True, blank=True)
    connection_point = models.ForeignKey(
        "grid.ConnectionPoint",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="meters",
    )
    asset_kind = models.CharField(
        max_length=12, choices=AssetKind.choices, default=AssetKind.HOUSEHOLD
    )
    direction = models.CharField(
        max_length=14, choices=Direction.choices, default=Direction.BIDIRECTIONAL
    )
    interval_seconds = models.PositiveIntegerField(default=900)
    multiplier = models.PositiveIntegerField(default=1)
    capacity_w = models.PositiveIntegerField(help_text="Contracted/physical capacity in W.")
    public_key = models.CharField(
        max_length=130, blank=True, help_text="Uncompressed secp256k1 public key, hex."
    )
    address = models.CharField(
        max_length=42, blank=True, db_index=True, help_text="Ethereum address of the device key."
    )
    active_from = models.DateTimeField()
    active_to = models.DateTimeField(null=True, blank=True)
    firmware_version = models.CharField(max_length=40, blank=True)
    firmware_target = models.CharField(max_length=40, blank=True)
    config_version = models.PositiveIntegerField(default=1)
    config_seq = models.BigIntegerField(
        default=0, help_text="Sequence number of the last signed configuration message sent."
    )
    last_seen = models.DateTimeField(null=True, blank=True)
    last_seq = models.BigIntegerField(default=-1)
    last_interval_start = models.DateTimeField(null=True, blank=True)
    typical_wh = models.PositiveIntegerField(
        null=True, blank=True, help_text="p95 of recent interval values (VEE high/low, spikes)."
    )

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return self.serial


class MeterKeyHistory(models.Model):
    """Every device key a meter has had (one row per registration or rotation), so a reading
    signed before a rotation still verifies offline against the key that signed it."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="key_history")
    public_key = models.CharField(max_length=130)
    address = models.CharField(max_length=42)
    registered_at = models.DateTimeField()

    class Meta:
        ordering = ["meter", "registered_at"]
        constraints = [
            models.UniqueConstraint(fields=["meter", "address"], name="meter_key_history_unique")
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.address}"


class MeterOccupancy(models.Model):
    """A past occupancy of a meter: `member` saw (and was settled and billed for) the meter's
    readings of [start, end). The current occupant is `Meter.member` from `Meter.member_since`;
    when the meter changes hands (`meter_assign`), the ending occupancy is recorded here, so the
    leaving member keeps their own days and the newcomer never gets them."""

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="occupancies")
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="past_meter_occupancies"
    )
    start = models.DateTimeField(null=True, blank=True, help_text="None: from the first reading.")
    end = models.DateTimeField()

    class Meta:
        ordering = ["meter", "end"]
        verbose_name_plural = "meter occupancies"
        indexes = [models.Index(fields=["member", "meter"], name="meters_occupancy_member")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(start__isnull=True) | models.Q(end__gt=models.F("start")),
                name="meters_occupancy_valid_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} member {self.member_id} until {self.end:%Y-%m-%d %H:%M}"


class MeterRegisterRead(models.Model):
    """A meter's registers read at a moment outside the interval stream: the final reading of
    an occupancy at a move, real (the device's register at the end of the interval before the
    move) or estimated (quality 8, flagged)."""

    class Reason(models.TextChoices):
        MOVE = "move", "Move out / move in"
        EXCHANGE_REMOVED = "exchange_removed", "Meter removed (exchange)"
        EXCHANGE_INSTALLED = "exchange_installed", "Meter installed (exchange)"

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="register_reads")
    read_at = models.DateTimeField()
    register_import_wh = models.BigIntegerField()
    register_export_wh = models.BigIntegerField()
    quality = models.PositiveSmallIntegerField(help_text="ESPI quality: 0 real, 8 estimated.")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["meter", "read_at"]

    def __str__(self) -> str:
        return f"{self.meter_id} @ {self.read_at:%Y-%m-%d %H:%M} {self.register_import_wh} Wh"


class MeterExchange(models.Model):
    """One meter replaced by another at the same site (`meter_exchange`). The exchange interval
    (the interval holding `at`) is measured partly by each: the old meter's share is recorded as
    its last reading (old final − old previous register), the new meter reports the rest
    (its first register − its initial register); VEE checks the new meter's first reading
    against `new_initial_register_wh`."""

    old_meter = models.OneToOneField(Meter, on_delete=models.PROTECT, related_name="exchanged_by")
    new_meter = models.OneToOneField(Meter, on_delete=models.PROTECT, related_name="exchanged_for")
    at = models.DateTimeField()
    interval_start = models.DateTimeField(help_text="Start of the interval holding `at`.")
    old_previous_register_wh = models.BigIntegerField()
    old_final_register_wh = models.BigIntegerField()
    old_previous_register_export_wh = models.BigIntegerField(default=0)
    old_final_register_export_wh = models.BigIntegerField(default=0)
    new_initial_register_wh = models.BigIntegerField()
    new_initial_register_export_wh = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.old_meter_id} → {self.new_meter_id} @ {self.at:%Y-%m-%d %H:%M}"


# --------------------------------------------------------------------------------------------
# Reading storage. The three high-volume tables (raw messages, readings) are PostgreSQL
# declaratively partitioned by time; their DDL lives in migration 0002 (RunSQL) and partitions are
# created ahead by `apps.meters.readings.partitions.partitions_ensure` (migration, beat task, and
# on demand before every write). The partition key is part of every primary key.
# --------------------------------------------------------------------------------------------


class Quality(models.IntegerChoices):
    """Green Button / NAESB ESPI ReadingQuality codes."""

    VALID = 0, "valid"
    EDITED = 7, "manually edited"
    ESTIMATED = 8, "estimated using reference day"
    INTERPOLATED = 9, "estimated using linear interpolation"
    QUESTIONABLE = 10, "questionable"
    RAW = 14, "raw"
    VALIDATED = 17, "validated"
    VERIFIED = 18, "verified"
    REVENUE_QUALITY = 19, "revenue-quality"


class Source(models.TextChoices):
    MQTT = "mqtt", "MQTT"
    HTTP = "http", "HTTP gateway"
    BACKFILL = "backfill", "Backfill"
    ESTIMATE = "estimate", "Estimation"
    REPROCESS = "reprocess", "Re-processed from quarantine"
    EXCHANGE = "exchange", "Final reading at a meter exchange"
    CONFLICT = "conflict", "Conflicting value accepted by staff"


class RawBatch(StatusModel, models.Model):
    """A batch of raw messages, stored in one transaction before the broker is acked."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"

    TRANSITIONS = {Status.PENDING: frozenset({Status.PROCESSED}), Status.PROCESSED: frozenset()}

    received_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MQTT)
    bridge = models.CharField(max_length=100, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    processed_at = models.DateTimeField(null=True, blank=True)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(
        default=0,
        help_text="Processing attempts started (a batch that never finishes one is "
        "quarantined whole after METER_INGEST_MAX_ATTEMPTS).",
    )

    class Meta:
        verbose_name = "raw batch"
        verbose_name_plural = "raw batches"
        indexes = [
            models.Index(
                fields=["received_at"],
                name="meters_rawbatch_pending",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.message_count} messages)"


class RawMessage(models.Model):
    """Every message exactly as received (partitioned by day of `received_at`)."""

    pk = models.CompositePrimaryKey("received_at", "id")
    id = models.BigIntegerField()
    received_at = models.DateTimeField()
    batch = models.ForeignKey(
        RawBatch, on_delete=models.DO_NOTHING, db_constraint=False, related_name="messages"
    )
    topic = models.CharField(max_length=300)
    payload = models.BinaryField()

    class Meta:
        # All messages of a batch share the batch's `received_at`, so a batch is read by
        # (received_at, batch) through the primary key within one partition: no extra index.
        managed = True

    def __str__(self) -> str:
        return f"{self.topic} @ {self.received_at:%Y-%m-%d %H:%M:%S}"


class Reading(models.Model):
    """A validated interval reading (partitioned by month of `interval_start`).

    Versioned: a correction (a late real value replacing an estimate, an accepted conflict, a
    staff edit) is a new row with `version + 1` and a `reason`; exactly one version per
    (meter, interval) has `is_current` (enforced by a partial unique index). Every signed field
    and the device signature are stored, so the reading can be re-verified and anchored.
    """

    pk = models.CompositePrimaryKey("meter_id", "interval_start", "version")
    meter = models.ForeignKey(
        Meter, on_delete=models.DO_NOTHING, db_constraint=False, related_name="readings"
    )
    interval_start = models.DateTimeField()
    version = models.PositiveSmallIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    interval_seconds = models.PositiveIntegerField(default=900)
    import_wh = models.BigIntegerField()
    export_wh = models.BigIntegerField()
    register_import_wh = models.BigIntegerField(default=0)
    register_export_wh = models.BigIntegerField(default=0)
    status = models.BigIntegerField(default=0, help_text="Device status flags (signed).")
    seq = models.BigIntegerField(null=True, blank=True)
    signature = models.BinaryField(null=True, blank=True)
    quality = models.PositiveSmallIntegerField(choices=Quality.choices, default=Quality.VALID)
    flags = models.IntegerField(default=0, help_text="VEE rule flags (apps.meters.vee.Flag).")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MQTT)
    reason = models.CharField(max_length=200, blank=True)
    raw_message_id = models.BigIntegerField(null=True, blank=True)
    ingested_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["interval_start"],
                name="meters_reading_cur_interval",
                condition=models.Q(is_current=True),
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "interval_start"],
                name="meters_reading_one_current",
                condition=models.Q(is_current=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.interval_start:%Y-%m-%d %H:%M} v{self.version}"


class Conflict(StatusModel, models.Model):
    """A different value for an interval that already has a measured reading: kept for review."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted (became the current version)"
        DISMISSED = "dismissed", "Dismissed"

    TRANSITIONS = {
        Status.OPEN: frozenset({Status.ACCEPTED, Status.DISMISSED}),
        Status.ACCEPTED: frozenset(),
        Status.DISMISSED: frozenset(),
    }

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="conflicts")
    interval_start = models.DateTimeField()
    existing_version = models.PositiveSmallIntegerField()
    interval_seconds = models.PositiveIntegerField(default=900)
    import_wh = models.BigIntegerField()
    export_wh = models.BigIntegerField()
    register_import_wh = models.BigIntegerField(default=0)
    register_export_wh = models.BigIntegerField(default=0)
    device_status = models.BigIntegerField(default=0)
    seq = models.BigIntegerField(null=True, blank=True)
    signature = models.BinaryField(null=True, blank=True)
    raw_message_id = models.BigIntegerField(null=True, blank=True)
    detected_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        indexes = [models.Index(fields=["meter", "interval_start"], name="meters_conflict_key")]

    def __str__(self) -> str:
        return f"conflict {self.meter_id} {self.interval_start:%Y-%m-%d %H:%M}"


class GatewayToken(models.Model):
    """A bearer token of one HTTP gateway, issued by staff; only its SHA-256 is stored."""

    name = models.CharField(max_length=100, unique=True)
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"gateway {self.name}"


class QuarantineReason(models.TextChoices):
    MALFORMED = "malformed", "Malformed message"
    WRONG_TYPE = "wrong_type", "Wrong field type"
    OVERSIZED = "oversized", "Oversized message"
    UNKNOWN_METER = "unknown_meter", "Unknown meter"
    MISSING_SIGNATURE = "missing_signature", "Missing signature"
    BAD_SIGNATURE = "bad_signature", "Bad signature"
    REPLAYED_SEQ = "replayed_seq", "Replayed sequence number"
    REORDERED_SEQ = "reordered_seq", "Reordered sequence number"
    OUT_OF_RANGE = "out_of_range", "Absurd / out-of-range value"
    NEGATIVE = "negative", "Negative value"
    REVERSE_FLOW = "reverse_flow", "Reverse flow on a one-direction meter"
    OVER_CAPACITY = "over_capacity", "Above physical capacity"
    OUTSIDE_ACTIVE = "outside_active", "Outside the meter's active period"
    FUTURE = "future", "Future timestamp"
    INTERVAL_MISMATCH = "interval_mismatch", "Interval length mismatch"
    MISALIGNED = "misaligned", "Interval start not aligned"
    BAD_VERSION = "bad_version", "Message format version is not the integer 1"
    NONCANONICAL_SIGNATURE = "noncanonical_sig", "Signature not canonical (v, high s)"
    BAD_TEXT = "bad_text", "Text PostgreSQL cannot store (NUL, lone surrogate)"
    START_OUT_OF_RANGE = "start_out_of_range", "Interval start outside the accepted time window"
    DB_REFUSED = "db_refused", "Refused by the database"
    BATCH_STUCK = "batch_stuck", "Batch failed every processing attempt"
    TOPIC_MISMATCH = "topic_mismatch", "Signed serial differs from the topic's serial"
    RATE_LIMITED = "rate_limited", "Over the per-serial rate limit"
    STALE = "stale", "Status message too old (or too far ahead)"


class Quarantine(StatusModel, models.Model):
    """A rejected reading or message, with the reason. Staff can re-process it after a fix."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        REPROCESSED = "reprocessed", "Re-processed"
        REJECTED_AGAIN = "rejected_again", "Rejected again"

    # Only open items are re-processed; the outcome is final (a new rejection is a new item).
    TRANSITIONS = {
        Status.OPEN: frozenset({Status.REPROCESSED, Status.REJECTED_AGAIN}),
        Status.REPROCESSED: frozenset(),
        Status.REJECTED_AGAIN: frozenset(),
    }

    received_at = models.DateTimeField(db_index=True)
    batch = models.ForeignKey(
        RawBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="quarantined"
    )
    raw_message_id = models.BigIntegerField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MQTT)
    topic = models.CharField(max_length=300, blank=True)
    serial = models.CharField(max_length=64, blank=True, db_index=True)
    reason = models.CharField(max_length=20, choices=QuarantineReason.choices, db_index=True)
    detail = models.CharField(max_length=500, blank=True)
    payload = models.BinaryField(help_text="The offending reading (or message) as received.")
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.OPEN)
    reprocessed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "quarantine"

    def __str__(self) -> str:
        return f"{self.get_reason_display()}: {self.serial or self.topic}"


class Granularity(models.TextChoices):
    HOUR = "hour", "Hour"
    DAY = "day", "Day (UTC)"


class MeterRollup(models.Model):
    """Hourly / daily energy per meter, refreshed incrementally from `RollupDirtyHour`."""

    pk = models.CompositePrimaryKey("meter_id", "granularity", "period_start")
    meter = models.ForeignKey(
        Meter,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the primary key starts with meter_id
        related_name="rollups",
    )
    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    period_start = models.DateTimeField()
    import_wh = models.BigIntegerField(default=0)
    export_wh = models.BigIntegerField(default=0)
    intervals = models.PositiveIntegerField(default=0)
    estimated_intervals = models.PositiveIntegerField(default=0)

    class Meta:
        # Partitioned by month of period_start (migration 0006, apps/meters/readings/partitions.py).
        indexes = [
            models.Index(fields=["period_start", "granularity"], name="meters_meterroll_period")
        ]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.granularity} {self.period_start:%Y-%m-%d %H:%M}"


class GridRollup(models.Model):
    """Hourly / daily energy per transformer and per feeder (sum of the meters behind it)."""

    class Level(models.TextChoices):
        TRANSFORMER = "transformer", "Transformer"
        FEEDER = "feeder", "Feeder"

    pk = models.CompositePrimaryKey("level", "node_id", "granularity", "period_start")
    level = models.CharField(max_length=12, choices=Level.choices)
    node_id = models.BigIntegerField()
    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    period_start = models.DateTimeField()
    import_wh = models.BigIntegerField(default=0)
    export_wh = models.BigIntegerField(default=0)
    meters = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["level", "granularity", "period_start"], name="meters_gridroll_time"
            )
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.node_id} {self.granularity} {self.period_start:%Y-%m-%d %H:%M}"


class RollupDirtyHour(models.Model):
    """Hours whose readings changed since the rollups were last refreshed (an invalidation log)."""

    hour_start = models.DateTimeField(primary_key=True)

    def __str__(self) -> str:
        return f"{self.hour_start:%Y-%m-%d %H:%M}"
