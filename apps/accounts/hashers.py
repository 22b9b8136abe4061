"""Password hashing: Argon2id with OWASP's parameters, and no database connection held while a
password is hashed (SECURITY.md, "Passwords").

- New and changed passwords are hashed with Argon2id, memory 19 MiB, 2 passes, 1 lane: the first
  configuration the OWASP Password Storage Cheat Sheet recommends. It is memory-hard (a guesser
  needs 19 MiB per attempt in flight, which is what makes GPUs and ASICs expensive) and costs
  about 20 ms of one core, against about 0.4 s for Django's 1,000,000-iteration PBKDF2-SHA256.
- Hashes stored earlier (PBKDF2-SHA256, or Argon2 with other parameters) still verify and are
  re-hashed with these parameters at the member's next successful login (Django's `must_update`).
- Hashing is the slowest part of a login. With the connection pool (DB_POOL), the request's
  connection goes back to the pool before the hash is computed, unless a transaction is open, so
  a burst of logins does not starve every other page of connections; the next query takes one
  again.
- At most PASSWORD_HASH_CONCURRENCY hashes run at once per process (about one per core: more
  only share the cores and each takes longer); a login finding every slot taken waits up to
  PASSWORD_HASH_WAIT_SECONDS, then `PasswordHashingBusy` is raised and
  `PasswordHashingBusyMiddleware` answers 503 with Retry-After (a login storm is told to come
  back instead of piling up). Nothing is counted against the account by django-axes then: no
  password was checked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher, PBKDF2PasswordHasher
from django.db import connections


class PasswordHashingBusy(Exception):  # noqa: N818 - the name says what the client is told
    """Every password-hashing slot of this process stayed taken for PASSWORD_HASH_WAIT_SECONDS."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many logins at once; try again shortly.")
        self.retry_after = retry_after


_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def _semaphore(size: int) -> threading.BoundedSemaphore:
    with _slots_lock:
        if size not in _slots:
            _slots[size] = threading.BoundedSemaphore(size)
        return _slots[size]


@contextmanager
def password_hashing_slot() -> Iterator[None]:
    """Hold one of this process's PASSWORD_HASH_CONCURRENCY hashing slots, waiting at most
    PASSWORD_HASH_WAIT_SECONDS for one (else PasswordHashingBusy)."""
    slots = _semaphore(max(1, int(settings.PASSWORD_HASH_CONCURRENCY)))
    wait = float(settings.PASSWORD_HASH_WAIT_SECONDS)
    if not slots.acquire(timeout=wait):
        raise PasswordHashingBusy(retry_after=max(1, round(wait)))
    try:
        yield
    finally:
        slots.release()


def database_connections_release() -> int:
    """Give every pooled connection of this thread back to its pool, unless a transaction (an
    atomic block) is open on it. Returns how many were given back."""
    released = 0
    for conn in connections.all(initialized_only=True):
        pooled = bool(getattr(conn, "pool", None))
        if pooled and conn.connection is not None and not conn.in_atomic_block:
            conn.close()
            released += 1
    return released


class ReleasesConnectionsMixin:
    """Mixin: verify and encode (the CPU-bound steps) without holding a pooled connection, in
    one of the process's bounded hashing slots."""

    def verify(self, password: str, encoded: str) -> bool:
        database_connections_release()
        with password_hashing_slot():
            return super().verify(password, encoded)  # type: ignore[misc]

    def encode(self, password: str, salt: str, *args: Any, **kwargs: Any) -> str:
        database_connections_release()
        with password_hashing_slot():
            return super().encode(password, salt, *args, **kwargs)  # type: ignore[misc]


class CooperativeArgon2PasswordHasher(ReleasesConnectionsMixin, Argon2PasswordHasher):
    """Argon2id (Django's hasher uses the id variant), m = 19 MiB, t = 2, p = 1 (OWASP)."""

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1


class ReleasingPBKDF2PasswordHasher(ReleasesConnectionsMixin, PBKDF2PasswordHasher):
    """Django's PBKDF2-SHA256, kept to verify (and then upgrade) hashes stored before Argon2id."""
