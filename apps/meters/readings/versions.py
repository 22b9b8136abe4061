"""Versions of each meter's readings, for the member pages' caches (docs/scaling.md, "Member
pages").

Every writer of readings (ingest, backfill, gap estimation, meter exchange, accepted conflicts)
and a meter changing hands calls `readings_changed` with the meters it touched, through
`rollups_mark_dirty`. That gives each of those meters a new random version token in the shared
cache — once at once and once more after the writer's transaction commits, so a page read
between the two cannot keep older rows under the newer token. A member page's cache key holds
the versions of the member's meters (`meters_version_key`): new data lands → new key → the
page is computed again; nothing has to find and delete the stale entries, which expire.

`readings_versions_forget` starts a new generation of every token (after a database restore,
and at the start of a test session, where primary keys repeat from one run to the next).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_PREFIX = "meters:rv:"
_GENERATION = _PREFIX + "generation"


def _token() -> str:
    return uuid.uuid4().hex[:16]


def _bump(meter_ids: list[int]) -> None:
    """Best effort: a cache that is down (a Redis restart) must never fail or delay the writer
    of readings. A restarted Redis holds no page entries either, so nothing stale survives."""
    token = _token()
    try:
        cache.set_many({f"{_PREFIX}{m}": token for m in meter_ids}, timeout=None)
    except (RedisError, OSError) as exc:
        logger.warning("readings versions of %d meters not bumped: %s", len(meter_ids), exc)


def readings_changed(*, meter_ids: Iterable[int]) -> None:
    """The readings of these meters changed (or who may see them did): new version tokens now
    and again when the current transaction commits (at once outside one)."""
    ids = sorted(set(meter_ids))
    if not ids:
        return
    _bump(ids)
    transaction.on_commit(lambda: _bump(ids))


def readings_versions_forget() -> None:
    """A new generation: every version key read from now on differs from any before."""
    cache.set(_GENERATION, _token(), timeout=None)


def meters_version_key(meter_ids: Iterable[int]) -> str:
    """A short key naming the current readings of exactly these meters (one cache round trip;
    two the first time a meter is seen)."""
    ids = sorted(set(meter_ids))
    keys = [_GENERATION] + [f"{_PREFIX}{m}" for m in ids]
    found = cache.get_many(keys)
    missing = [k for k in keys if k not in found]
    if missing:
        for key in missing:  # add, never set: a writer's newer token wins
            cache.add(key, _token(), timeout=None)
        found = cache.get_many(keys)
    parts = [str(found.get(k, "")) for k in keys] + [str(m) for m in ids]
    return hashlib.blake2b(" ".join(parts).encode(), digest_size=12).hexdigest()
