"""django-import-export widgets for admin imports that name a bad cell in words (the library's
own raise decimal or parsing internals), shared by every app's import resource."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime
from import_export import widgets


class IsoDateTimeWidget(widgets.DateTimeWidget):
    """ISO 8601 with an offset (``2026-01-01T00:00:00+00:00``); without one, UTC; empty: None."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
        if isinstance(value, datetime):
            parsed: datetime | None = value
        elif value is None or str(value).strip() == "":
            return None
        else:
            parsed = parse_datetime(str(value).strip())
        if parsed is None:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time (2026-01-01T00:00:00+00:00).")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class WholeNumberWidget(widgets.IntegerWidget):
    """A whole number; anything else is that row's error, named in words."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
        text = str(value if value is not None else "").strip()
        if text == "":
            return None
        try:
            number = float(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a whole number.") from exc
        if not number.is_integer():
            raise ValueError(f"{text!r} is not a whole number.")
        return int(number)


class ExactDecimalWidget(widgets.DecimalWidget):
    """A decimal number written with a dot (``0.3200``), kept exact (money, prices)."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
        text = str(value if value is not None else "").strip()
        if text == "":
            return None
        try:
            number = Decimal(text)
        except InvalidOperation as exc:
            raise ValueError(f"{text!r} is not a decimal number (use a dot: 0.32).") from exc
        if not number.is_finite():
            raise ValueError(f"{text!r} is not a decimal number.")
        return number


class LookupWidget(widgets.ForeignKeyWidget):
    """A related row by one of its unique columns (``field``); an empty cell or a value matching
    nothing is that row's error: "No <label> <value>."."""

    def __init__(self, model: Any, field: str, label: str, **kwargs: Any) -> None:
        super().__init__(model, field=field, **kwargs)
        self.label = label

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
        if value is None or str(value).strip() == "":
            raise ValueError(f"The {self.label} is required.")
        try:
            return super().clean(str(value).strip(), row, **kwargs)
        except self.model.DoesNotExist as exc:
            raise ValueError(f"No {self.label} {value}.") from exc
