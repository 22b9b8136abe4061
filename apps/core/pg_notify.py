"""PostgreSQL LISTEN/NOTIFY: a write tells a long-running process that something changed, so that
the process waits for the news instead of polling the database.

`notify(channel)` inside a transaction is delivered when it commits (and never when it rolls
back); `listen(channel, on_notify)` keeps one autocommit connection of its own listening and calls
`on_notify()` for each notification, reconnecting (and calling `on_notify()` once, since news may
have been missed) after a lost connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from django.db import connection, connections
from psycopg import sql
from psycopg.conninfo import make_conninfo

logger = logging.getLogger(__name__)


def notify(channel: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [channel])


def _conninfo(alias: str) -> str:
    s = connections[alias].settings_dict
    params = {
        "dbname": s["NAME"],
        "user": s.get("USER") or None,
        "password": s.get("PASSWORD") or None,
        "host": s.get("HOST") or None,
        "port": s.get("PORT") or None,
    }
    options = s.get("OPTIONS", {})
    for key in ("sslmode", "sslrootcert", "application_name"):
        if options.get(key):
            params[key] = options[key]
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


async def listen(
    channel: str, on_notify: Callable[[], None], *, alias: str = "default", retry_s: float = 5.0
) -> None:
    """Run until cancelled."""
    conninfo = _conninfo(alias)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                on_notify()  # anything sent before LISTEN took effect
                async for _ in conn.notifies():
                    on_notify()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the database may be restarting: listen again
            logger.warning("lost the LISTEN connection for %s; retrying", channel, exc_info=True)
        await asyncio.sleep(retry_s)
