"""Row locks in primary-key order, so concurrent writers never deadlock (Saleor lock_objects)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def lock_rows(queryset: QuerySet[M], pks: Iterable[int] | None = None) -> list[M]:
    """Lock the rows (SELECT … FOR UPDATE) in primary-key order. Call inside a transaction."""
    qs = queryset if pks is None else queryset.filter(pk__in=list(pks))
    return list(qs.select_for_update().order_by("pk"))
