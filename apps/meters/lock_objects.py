"""Row locks of the meters app (see apps/core/locks.py)."""

from __future__ import annotations

from collections.abc import Iterable

from apps.core.locks import lock_row, lock_rows
from apps.meters.models import Conflict, Meter, Quarantine, RawBatch


def meter_lock(meter_id: int) -> Meter:
    """The meter row; serialises the writers of one device (e.g. certificate issuers)."""
    return lock_row(Meter.objects.all(), meter_id)


def raw_batch_lock(batch_id: int) -> RawBatch:
    return lock_row(RawBatch.objects.all(), batch_id)


def open_quarantine_lock(quarantine_ids: Iterable[int]) -> list[Quarantine]:
    """The still-open items among `quarantine_ids`, locked in primary-key order."""
    return lock_rows(Quarantine.objects.filter(status=Quarantine.Status.OPEN), quarantine_ids)


def conflict_lock(conflict_id: int) -> Conflict:
    """The conflict row (take the meter's lock first: `meter_lock`, then this)."""
    return lock_row(Conflict.objects.all(), conflict_id)
