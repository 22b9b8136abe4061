"""Reads from a PostgreSQL replica (docs/scaling.md, "Concurrency").

With `DATABASE_REPLICA_URL` set, the settings define a second database alias, `replica`, and the
router below. The rule is explicit: a read goes to the replica only inside `replica_reads()`,
which the entry points open around pages whose data the viewer cannot have just written
(a member's meter readings on the dashboard, their statements); every other read and every
write goes to the primary (`default`). Inside `replica_reads()` a read still stays on the
primary while a transaction is open on it, so a service that writes and then reads in one
transaction always sees its own write. Without a replica configured, `replica_reads()` changes
nothing.

The ORM follows the router (`ReplicaRouter.db_for_read`); selectors that run raw SQL take their
cursor from `read_connection()`, which applies the same rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

REPLICA_ALIAS = "replica"

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


def replica_configured() -> bool:
    return REPLICA_ALIAS in settings.DATABASES


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads in this block may go to the replica (see the module's rule)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def read_alias() -> str:
    """The alias a read issued now goes to: the replica inside `replica_reads()` when one is
    configured and no transaction is open on the primary; otherwise the primary."""
    if (
        _replica_reads.get()
        and replica_configured()
        and not connections[DEFAULT_DB_ALIAS].in_atomic_block
    ):
        return REPLICA_ALIAS
    return DEFAULT_DB_ALIAS


def read_connection() -> BaseDatabaseWrapper:
    """The connection for a raw-SQL read (same rule as `read_alias`)."""
    return connections[read_alias()]


class ReplicaRouter:
    """settings.DATABASE_ROUTERS when a replica is configured."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        return read_alias()

    def db_for_write(self, model: type, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # The replica holds the primary's rows: an object read there may relate to one here.
        pair = {obj1._state.db, obj2._state.db}
        return True if pair <= {DEFAULT_DB_ALIAS, REPLICA_ALIAS} else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        # The replica follows the primary's schema through replication, never by migrate.
        return False if db == REPLICA_ALIAS else None
