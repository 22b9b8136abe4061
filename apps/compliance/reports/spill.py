"""Report rows computed once and read back many times without holding them in memory.

A streamed report renders its tables at least twice (the hash pass, then the download). When a
table's rows are costly to compute (the carbon report runs every member-hour through the Scope 2
engine), its builder computes them once and spills them here: an anonymous temporary file
(removed when the spill is garbage-collected or the process ends) holding the rows pickled in
batches. Memory holds one batch, whatever the number of rows; any number of passes, even
interleaved, read the same rows in the order they were appended.
"""

from __future__ import annotations

import io
import pickle  # nosec B403 - only this process's own rows, written to its own temporary file
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from typing import Any


class SpilledRows:
    def __init__(self, batch: int = 1000) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the finalizer below
        weakref.finalize(self, self._file.close)
        self._batch_size = batch
        self._pending: list[Sequence[Any]] = []
        self._offsets: list[int] = []
        self._count = 0

    def append(self, row: Sequence[Any]) -> None:
        self._pending.append(row)
        self._count += 1
        if len(self._pending) >= self._batch_size:
            self._flush()

    def __len__(self) -> int:
        return self._count

    def _flush(self) -> None:
        if not self._pending:
            return
        self._file.seek(0, io.SEEK_END)
        self._offsets.append(self._file.tell())
        pickle.dump(self._pending, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._pending = []

    def rows(self) -> Iterator[Sequence[Any]]:
        """The rows appended so far, in order (a fresh pass on every call)."""
        self._flush()
        for offset in list(self._offsets):
            self._file.seek(offset)  # each batch is read whole: passes may interleave
            yield from pickle.load(self._file)  # noqa: S301 - our own file, see above
