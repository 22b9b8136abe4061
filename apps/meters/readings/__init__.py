"""Meter readings, from the wire to the table: the one owner of the reading storage.

A reading's path, module by module:

1. `wire` — message format v1 (one reading, or a gateway batch `{"readings": [...]}`): bytes
   → `Parsed` readings and `Reject`s with a reason (msgspec fast path, reasoned slow path).
2. `pipeline.raw_batch_store` — the MQTT bridge (`apps.meters.bridge`) or the HTTP gateway
   (`apps.meters.apis`) stores each batch of messages exactly as received (COPY), then acks.
3. `pipeline.reading_batch_ingest` — the Celery task `apps.meters.tasks.ingest_batch` (or the
   bridge inline) processes one stored batch: parse (`wire`) → verify the device signature →
   VEE (`apps.meters.vee`) → write (`store`) validated rows as `ReadingRow`s, conflicts and
   quarantine, in one transaction.
4. `store` — the reading and raw-message tables: typed rows in, COPY and
   INSERT … ON CONFLICT, versions (a correction is a new version; one version is current).
5. `partitions` — the time partitions of those tables, created ahead and on demand.
6. `rollups` — hourly/daily sums per meter, transformer and feeder, refreshed from the hours
   each writer marked dirty.

Other apps never import this package: they read readings through `apps.meters.selectors`.
"""
