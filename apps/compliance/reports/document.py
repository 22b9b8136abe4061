"""Report documents: canonical data, content hash, CSV and XLSX rendering and parsing back.

Pure module (no Django import) so the format can be verified by anyone with this file.

The *content hash* is SHA-256 over the report's canonical data: for each table, a line
``[table-name]`` followed by the table as CSV (header first, ``\\n`` line ends, UTF-8, values
rendered canonically: integers as digits, decimals in plain notation, empty for none). The
*anchors hash* is SHA-256 over the anchors as canonical JSON (sorted keys, no spaces). Every
format (CSV, XLSX, PDF) carries the canonical data, both hashes and the anchors, so
``python manage.py verify_report FILE`` can recompute them from the file alone.

Every exported file is also *sealed*: the cooperative's report-signing key signs the
:func:`sealed_fields` (kind, parameters, generation time, both hashes and the totals), and the file
carries the signer's address and the signature. Whoever edits the data, recomputes the hashes and
drops anchors still cannot make a signature that recovers to the cooperative's address.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from apps.core.spreadsheets import SafeCsvWriter, spreadsheet_text

DATA_MARKER = "# --- data ---"
SEAL_KEYS = frozenset({"signer", "signature"})
FORMAT_VERSION = 1


def canonical(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


# Rows rendered per chunk when the canonical data is streamed (hashing and CSV download).
CHUNK_ROWS = 2000


class ReportChangedError(RuntimeError):
    """A streamed table gave other data while the file was written than when it was hashed."""


@dataclass
class Table:
    """One table of a report: its rows in memory (`rows`), or, for tables whose size grows with
    meters × intervals, a `source` that yields them afresh on every call (a server-side cursor),
    so the table is hashed and written in chunks and never held whole."""

    name: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    source: Callable[[], Iterable[Sequence[Any]]] | None = None
    streamed_count: int | None = None  # rows the last pass over `source` gave

    @property
    def streamed(self) -> bool:
        return self.source is not None

    def iter_rows(self) -> Iterator[Sequence[Any]]:
        return iter(self.source()) if self.source is not None else iter(self.rows)

    @property
    def row_count(self) -> int:
        if self.source is None:
            return len(self.rows)
        return self.streamed_count or 0

    def canonical_rows(self) -> list[list[str]]:
        return [list(self.columns)] + [[canonical(v) for v in row] for row in self.iter_rows()]


def iter_canonical_data(
    tables: Sequence[Table] | Sequence[tuple[str, list[list[str]]]], chunk_rows: int = CHUNK_ROWS
) -> Iterator[bytes]:
    """The canonical data in chunks of about `chunk_rows` rows (whole rows, UTF-8): the same
    bytes as :func:`canonical_data`, produced with memory bounded by one chunk."""
    out = io.StringIO()
    writer = SafeCsvWriter(out, lineterminator="\n")

    def drain() -> bytes:
        chunk = out.getvalue().encode("utf-8")
        out.seek(0)
        out.truncate()
        return chunk

    for table in tables:
        if isinstance(table, Table):
            name = table.name
            header: list[str] | None = list(table.columns)
            rows: Iterable[Sequence[Any]] = table.iter_rows()
        else:
            name, rows, header = table[0], table[1], None
        out.write(f"[{name}]\n")
        if header is not None:
            writer.writerow(header)
        n = 0
        for row in rows:
            writer.writerow([canonical(v) for v in row] if header is not None else row)
            n += 1
            if n % chunk_rows == 0:
                yield drain()
        if isinstance(table, Table) and table.source is not None:
            table.streamed_count = n
    tail = drain()
    if tail:
        yield tail


def canonical_data(tables: Sequence[Table] | Sequence[tuple[str, list[list[str]]]]) -> bytes:
    return b"".join(iter_canonical_data(tables))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def anchors_canonical(anchors: list[dict[str, Any]]) -> bytes:
    return json.dumps(anchors, sort_keys=True, separators=(",", ":"), default=str).encode()


@dataclass
class ReportDocument:
    kind: str
    title: str
    params: dict[str, Any]
    tables: list[Table]
    totals: list[tuple[str, Any]] = field(default_factory=list)
    anchors: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    generated_at: str = ""
    seal: dict[str, str] = field(default_factory=dict)  # {"signer", "signature"} once exported
    # The on-chain anchor of this report's content hash, queued at export:
    # {"kind", "digest", "intent", "network"} (empty for a document never exported).
    document_anchor: dict[str, Any] = field(default_factory=dict)

    @property
    def streamed(self) -> bool:
        """Has a table whose rows are read afresh on each pass rather than held in memory."""
        return any(t.streamed for t in self.tables)

    @cached_property
    def data(self) -> bytes:
        # Tables are not changed after a builder returns the document: computed once. A
        # streamed document's data is the whole file's size: use iter_data() instead.
        return canonical_data(self.tables)

    def iter_data(self) -> Iterator[bytes]:
        if self.streamed:
            return iter_canonical_data(self.tables)
        return iter((self.data,))

    @cached_property
    def content_hash(self) -> str:
        if not self.streamed:
            return sha256_hex(self.data)
        # One streaming pass (hashlib update per chunk); also counts the streamed rows.
        digest = hashlib.sha256()
        for chunk in iter_canonical_data(self.tables):
            digest.update(chunk)
        return digest.hexdigest()

    @property
    def anchors_hash(self) -> str:
        return sha256_hex(anchors_canonical(self.anchors))

    @property
    def row_count(self) -> int:
        if self.streamed:
            self.content_hash  # noqa: B018 - the hashing pass counts the streamed rows
        return sum(t.row_count for t in self.tables)

    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "title": self.title,
            "params": self.params,
            "generated_at": self.generated_at,
            "content_sha256": self.content_hash,
            "anchors_sha256": self.anchors_hash,
            "totals": [[label, canonical(value)] for label, value in self.totals],
            "anchors": self.anchors,
            "document_anchor": self.document_anchor,
            "verify": "python manage.py verify_report FILE [--against-db]",
            **self.seal,
        }


SEALED_FIELDS = (
    "kind",
    "params",
    "generated_at",
    "content_sha256",
    "anchors_sha256",
    "totals",
    "document_anchor",
)


def sealed_fields(meta: dict[str, Any]) -> bytes:
    """What the report-signing key signs: the declared fields as canonical JSON."""
    subset = {key: meta.get(key) for key in SEALED_FIELDS}
    subset["totals"] = [[str(label), str(value)] for label, value in subset.get("totals") or []]
    subset["document_anchor"] = subset.get("document_anchor") or {}
    return json.dumps(subset, sort_keys=True, separators=(",", ":"), default=str).encode()


# --- CSV ---------------------------------------------------------------------------------------


def render_csv(doc: ReportDocument) -> bytes:
    return b"".join(iter_render_csv(doc))


def iter_render_csv(doc: ReportDocument) -> Iterator[bytes]:
    """The CSV file in chunks: the header (hashes, totals, anchors, seal), then the data.

    A streamed document's data is read a second time here (the first pass made the content
    hash that the header declares and the seal signs) and hashed again on the way out; should
    the database give other data than at the first pass, the stream ends with
    :class:`ReportChangedError` instead of completing a file that would not verify."""
    meta = doc.meta()
    lines = [
        f"# EnergySphere report: {doc.title}",
        f"# kind: {doc.kind}",
        f"# params: {json.dumps(doc.params, sort_keys=True)}",
        f"# generated_at: {doc.generated_at}",
        f"# content_sha256: {meta['content_sha256']}",
        f"# anchors_sha256: {meta['anchors_sha256']}",
        f"# verify: {meta['verify']}",
    ]
    lines += [f"# total: {json.dumps([label, canonical(v)])}" for label, v in doc.totals]
    lines += [f"# anchor: {json.dumps(a, sort_keys=True, default=str)}" for a in doc.anchors]
    if doc.document_anchor:
        lines.append(f"# document_anchor: {json.dumps(doc.document_anchor, sort_keys=True)}")
    lines += [f"# note: {note}" for note in doc.notes]
    lines += [f"# {key}: {doc.seal[key]}" for key in ("signer", "signature") if key in doc.seal]
    lines.append(DATA_MARKER)
    yield ("\n".join(lines) + "\n").encode("utf-8")
    if not doc.streamed:
        yield doc.data
        return
    digest = hashlib.sha256()
    for chunk in iter_canonical_data(doc.tables):
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != meta["content_sha256"]:
        raise ReportChangedError(
            f"the {doc.kind} report's data changed while it was downloaded; download it again"
        )


@dataclass
class ParsedReport:
    format: str
    meta: dict[str, Any]
    data: bytes  # canonical data as carried by the file
    text: str = ""  # visible text (PDF), to check the printed hash

    @property
    def computed_hash(self) -> str:
        return sha256_hex(self.data)

    @property
    def computed_anchors_hash(self) -> str:
        return sha256_hex(anchors_canonical(self.meta.get("anchors", [])))


def parse_csv(raw: bytes) -> ParsedReport:
    text = raw.decode("utf-8")
    marker = "\n" + DATA_MARKER + "\n"
    head, sep, data = text.partition(marker)
    if not sep:
        raise ValueError("not an EnergySphere CSV report (no data marker)")
    meta: dict[str, Any] = {"anchors": [], "totals": []}
    for line in head.splitlines():
        key, _, value = line.removeprefix("# ").partition(": ")
        if key == "params":
            meta["params"] = json.loads(value)
        elif key == "anchor":
            meta["anchors"].append(json.loads(value))
        elif key == "total":
            meta["totals"].append(json.loads(value))
        elif key == "document_anchor":
            meta["document_anchor"] = json.loads(value)
        elif key in {"kind", "generated_at", "content_sha256", "anchors_sha256"} | SEAL_KEYS:
            meta[key] = value
    return ParsedReport("csv", meta, data.encode("utf-8"))


# --- XLSX --------------------------------------------------------------------------------------


def _xlsx_value(value: Any) -> Any:
    # Integers stay numbers (exact); everything else is written as its canonical text so the
    # file round-trips to the same bytes (no float rounding of decimals).
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**15:
        return value
    return canonical(value)


def _sheet_title(name: str, used: set[str]) -> str:
    title = name[:28] or "data"
    n = 1
    while title in used:
        n += 1
        title = f"{name[:25]}-{n}"
    used.add(title)
    return title


def render_xlsx(doc: ReportDocument) -> bytes:
    """Write-only workbook (streams rows: linear time, low memory)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    def bold(ws, value):
        cell = WriteOnlyCell(ws, value=value)
        cell.font = Font(bold=True)
        return cell

    wb = Workbook(write_only=True)
    info = wb.create_sheet("Report")
    info.column_dimensions["A"].width = 34
    info.column_dimensions["B"].width = 70
    meta = doc.meta()
    info.append([bold(info, "EnergySphere report"), doc.title])
    for key in ("kind", "generated_at", "content_sha256", "anchors_sha256", "verify"):
        info.append([key, canonical(meta[key])])
    for key in ("signer", "signature"):
        if key in meta:
            info.append([key, meta[key]])
    info.append(["params", canonical(doc.params)])
    if doc.document_anchor:
        info.append(["document_anchor", canonical(doc.document_anchor)])
    info.append([])
    info.append([bold(info, "Totals")])
    for label, value in doc.totals:
        info.append([label, _xlsx_value(value)])
    for note in doc.notes:
        info.append(["note", note])
    used = {"Report", "Anchors", "Tables"}
    index = wb.create_sheet("Tables")
    index.append(["table", "sheet"])
    for table in doc.tables:
        title = _sheet_title(table.name, used)
        index.append([table.name, title])
        ws = wb.create_sheet(title)
        ws.append([bold(ws, c) for c in table.columns])
        for row in table.iter_rows():
            values = []
            for v in row:
                value = _xlsx_value(v)
                if isinstance(value, str):
                    cell = WriteOnlyCell(ws, value=spreadsheet_text(value))
                    cell.data_type = "s"  # text, never a formula
                    value = cell
                values.append(value)
            ws.append(values)
    anchors = wb.create_sheet("Anchors")
    anchors.append(["anchor (canonical JSON)"])
    for anchor in doc.anchors:
        anchors.append([json.dumps(anchor, sort_keys=True, default=str)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return canonical(value)


def parse_xlsx(raw: bytes) -> ParsedReport:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    meta: dict[str, Any] = {"anchors": [], "totals": []}
    in_totals = False
    for row in wb["Report"].iter_rows(values_only=True):
        first = row[0] if row else None
        if first in {"kind", "generated_at", "content_sha256", "anchors_sha256"} | SEAL_KEYS:
            meta[first] = _cell_text(row[1])
        elif first == "params":
            meta["params"] = json.loads(row[1])
        elif first == "document_anchor":
            meta["document_anchor"] = json.loads(row[1])
        elif first == "Totals":
            in_totals = True
        elif in_totals and first not in (None, "note"):
            meta["totals"].append([_cell_text(first), _cell_text(row[1])])
        else:
            in_totals = False
    tables: list[tuple[str, list[list[str]]]] = []
    for name, sheet in list(wb["Tables"].iter_rows(values_only=True))[1:]:
        rows = [[_cell_text(v) for v in row] for row in wb[sheet].iter_rows(values_only=True)]
        tables.append((name, rows))
    for (cell,) in list(wb["Anchors"].iter_rows(values_only=True))[1:]:
        meta["anchors"].append(json.loads(cell))
    return ParsedReport("xlsx", meta, canonical_data(tables))
