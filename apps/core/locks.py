"""Row locks (SELECT … FOR UPDATE) taken in primary-key order, so concurrent writers never
deadlock (Saleor's lock_objects).

Every app keeps its named locks in `apps/<app>/lock_objects.py`, built on these helpers; no other
module calls `select_for_update()` (tests/test_locking_convention.py checks it). Two
transactions that lock several rows of one table always take them in ascending primary key, so
neither can hold a row the other waits for while waiting for one the other holds. A helper that
locks one row (`lock_row`, `lock_first`, `lock_or_create`) takes no second row of that table.

Call them inside a transaction (`@transaction.atomic`); the locks last until it ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def _for_update(
    queryset: QuerySet[M], *, skip_locked: bool, nowait: bool, of: Sequence[str]
) -> QuerySet[M]:
    return queryset.select_for_update(skip_locked=skip_locked, nowait=nowait, of=tuple(of))


def lock_rows(
    queryset: QuerySet[M],
    pks: Iterable[int] | None = None,
    *,
    skip_locked: bool = False,
    nowait: bool = False,
    of: Sequence[str] = (),
) -> list[M]:
    """Lock the rows of `queryset` (only those in `pks` when given) in primary-key order and
    return them in that order. `skip_locked` leaves out rows another transaction holds; `nowait`
    raises `DatabaseError` instead of waiting; `of` limits the lock to the named relations of a
    `select_related` join ("self" is the queryset's own table)."""
    qs = queryset if pks is None else queryset.filter(pk__in=list(pks))
    return list(_for_update(qs, skip_locked=skip_locked, nowait=nowait, of=of).order_by("pk"))


def lock_row(queryset: QuerySet[M], pk: int, *, nowait: bool = False, of: Sequence[str] = ()) -> M:
    """Lock the one row with primary key `pk` (`Model.DoesNotExist` when there is none)."""
    return _for_update(queryset, skip_locked=False, nowait=nowait, of=of).get(pk=pk)


def lock_first(
    queryset: QuerySet[M],
    *,
    skip_locked: bool = False,
    nowait: bool = False,
    of: Sequence[str] = (),
) -> M | None:
    """Lock the first row of `queryset` (its ordering, else primary key) or return None. Meant
    for look-ups that match one row (a unique key); with `skip_locked` a row another transaction
    holds counts as absent."""
    return _for_update(queryset, skip_locked=skip_locked, nowait=nowait, of=of).first()


def lock_or_create(
    queryset: QuerySet[M], *, defaults: dict[str, Any] | None = None, **lookup: Any
) -> tuple[M, bool]:
    """`get_or_create` under the row lock: the existing row locked, or a new one (held by this
    transaction until it ends). Returns (row, created)."""
    return queryset.select_for_update().get_or_create(defaults=defaults, **lookup)
