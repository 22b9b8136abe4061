"""Bulk inserts with PostgreSQL COPY: for services that write tens of thousands of rows at once
(the monthly billing run's invoice lines), where building a model instance per row and a
parameterised INSERT per batch costs more than the write itself.

COPY bypasses the ORM: no model instances, no signals, no field defaults — pass every column
the table needs, already in the value the field would store (Decimal, date, str, bool, int, and
`psycopg.types.json.Jsonb` for JSON columns). It runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models


def copy_insert(
    model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert `rows` (tuples in the order of `fields`, model field names) into `model`'s table
    with one COPY; returns how many rows were written."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(model._meta.get_field(f).column) for f in fields)  # type: ignore[union-attr,arg-type]
    sql = f"COPY {table} ({columns}) FROM STDIN"
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count
