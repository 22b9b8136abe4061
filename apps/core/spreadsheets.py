"""Spreadsheet formula injection: text that a spreadsheet would run as a formula is escaped.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is evaluated
by Excel, LibreOffice and Google Sheets (OWASP "CSV injection"); a member-chosen name such as
``=HYPERLINK("http://…")`` would otherwise run on an auditor's machine. Such text gets a leading
apostrophe, which spreadsheets show as text. Plain numbers (``-12``, ``+3.5``) are left as they
are: they are data, not formulas. Every CSV and XLSX export goes through :func:`spreadsheet_text`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_text(value: str) -> str:
    """`value`, escaped with a leading apostrophe when a spreadsheet would read a formula."""
    if value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def spreadsheet_cell(value: Any) -> Any:
    """A cell value for CSV/XLSX writers: strings escaped, other values unchanged."""
    return spreadsheet_text(value) if isinstance(value, str) else value


class SafeCsvWriter:
    """`csv.writer` whose rows are escaped cell by cell.

    Python's writer quotes a field only for the delimiter, the quote character and the characters
    of its line terminator: with ``lineterminator="\n"`` a bare carriage return inside a field is
    written unquoted, and a spreadsheet starts a new row there (where ``=…`` would run). A row
    with such a field is written with every field quoted; other rows are written as usual.
    """

    def __init__(self, stream: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(stream, **kwargs)
        self._quoting_writer = csv.writer(stream, **{**kwargs, "quoting": csv.QUOTE_ALL})
        terminator = self._writer.dialect.lineterminator
        self._unquoted_breaks = tuple(c for c in "\r\n" if c not in terminator)

    def writerow(self, row: Iterable[Any]) -> Any:
        cells = [spreadsheet_cell(v) for v in row]
        if self._unquoted_breaks and any(
            isinstance(c, str) and any(b in c for b in self._unquoted_breaks) for c in cells
        ):
            return self._quoting_writer.writerow(cells)
        return self._writer.writerow(cells)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
