"""Auditor and staff reports: build (read-only), render (CSV, XLSX, PDF), parse back, verify.

doc = report_build(kind="carbon", start=..., end=...)
body, content_type, filename = report_export(doc=doc, fmt="pdf", actor=user)  # services
result = report_verify(raw_bytes, against_db=True)

Exporting (``apps.compliance.services.report_export``) queues the report's content hash for
anchoring on chain (MeterOracle document anchor, kind ``compliance_report``) and seals the file;
verification asks the chain whether that hash is anchored (or, when the chain does not answer,
the local outbox and indexer records) and says which source answered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.chain.selectors import (
    DocumentAnchorStatus,
    chain_intent_get,
    document_anchor_status,
    meter_anchor_get,
)
from apps.compliance.reports.builders import REPORTS, ReportKind
from apps.compliance.reports.document import (
    ParsedReport,
    ReportChangedError,
    ReportDocument,
    iter_render_csv,
    parse_csv,
    parse_xlsx,
    render_csv,
    render_xlsx,
)
from apps.compliance.reports.signing import (
    report_seal,
    report_seal_problem,
    trusted_signer_address,
)
from apps.core.exceptions import ApplicationError
from apps.market.selectors import settlement_run_trades_root

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}

# The MeterOracle document kind under which every exported report's content hash is anchored.
REPORT_ANCHOR_KIND = "compliance_report"

__all__ = [
    "FORMATS",
    "REPORT_ANCHOR_KIND",
    "REPORTS",
    "ReportChangedError",
    "ReportKind",
    "VerifyResult",
    "report_build",
    "report_parse",
    "report_render",
    "report_format_check",
    "report_render_stream",
    "report_size_problem",
    "report_verify",
]


def report_build(
    *,
    kind: str,
    start: datetime,
    end: datetime,
    member_id: int | None = None,
    pinned: dict[str, int] | None = None,
) -> ReportDocument:
    spec = REPORTS.get(kind)
    if spec is None:
        raise ApplicationError(f"Unknown report {kind!r}.", {"known": sorted(REPORTS)})
    if start.tzinfo is None or end.tzinfo is None:
        raise ApplicationError("Report periods are aware UTC datetimes.", {})
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ApplicationError("The period must end after it starts.", {})
    kwargs: dict[str, Any] = {"start": start, "end": end}
    if spec.member_filter and member_id:
        kwargs["member_id"] = member_id
    for name, value in (pinned or {}).items():
        if name in spec.pinned and value is not None:
            kwargs[name] = int(value)
    doc = spec.build(**kwargs)
    doc.params = {"start": start.isoformat(), "end": end.isoformat(), **doc.params}
    doc.generated_at = timezone.now().astimezone(UTC).isoformat(timespec="seconds")
    return doc


def report_filename(doc: ReportDocument, fmt: str) -> str:
    start = doc.params["start"][:10]
    end = doc.params["end"][:10]
    return f"energysphere-{doc.kind}-{start}-{end}-{doc.content_hash[:12]}.{fmt}"


# Formats written whole in memory, and the setting that caps their rows.
WHOLE_FILE_FORMATS = {"xlsx": "REPORT_XLSX_MAX_ROWS", "pdf": "REPORT_PDF_MAX_ROWS"}


def report_size_problem(doc: ReportDocument, fmt: str) -> str | None:
    """Why `doc` is too large for `fmt` (None when it fits). CSV streams at constant memory
    whatever the size; XLSX and PDF files are built whole, so they are capped."""
    setting = WHOLE_FILE_FORMATS.get(fmt)
    if setting is None:
        return None
    limit = int(getattr(settings, setting))
    rows = doc.row_count
    if rows <= limit:
        return None
    return (
        f"This report has {rows:,} rows: {fmt.upper()} files are limited to {limit:,} rows "
        f"({setting}). Download it as CSV (streamed, any size), or choose a shorter period "
        "or one member."
    )


def report_format_check(doc: ReportDocument, fmt: str) -> None:
    """Refuse an unknown format, or a report too large for a format built whole in memory."""
    if fmt not in FORMATS:
        raise ApplicationError(f"Unknown format {fmt!r}.", {"known": sorted(FORMATS)})
    problem = report_size_problem(doc, fmt)
    if problem:
        raise ApplicationError(problem, {"rows": doc.row_count, "format": fmt})


def report_render_stream(doc: ReportDocument) -> tuple[Iterator[bytes], str, str]:
    """The CSV file as chunks, sealed by the cooperative's report-signing key: memory stays
    bounded by one chunk whatever the report's size (see document.iter_render_csv)."""
    doc.seal = report_seal(doc)
    return iter_render_csv(doc), FORMATS["csv"], report_filename(doc, "csv")


def report_render(doc: ReportDocument, fmt: str) -> tuple[bytes, str, str]:
    """The file in `fmt`, sealed by the cooperative's report-signing key."""
    report_format_check(doc, fmt)
    doc.seal = report_seal(doc)
    if fmt == "csv":
        body = render_csv(doc)
    elif fmt == "xlsx":
        body = render_xlsx(doc)
    elif fmt == "pdf":
        from apps.compliance.reports.pdf import render_pdf

        body = render_pdf(doc)
    else:
        raise ApplicationError(f"Unknown format {fmt!r}.", {"known": sorted(FORMATS)})
    return body, FORMATS[fmt], report_filename(doc, fmt)


def report_parse(raw: bytes) -> ParsedReport:
    if raw.startswith(b"%PDF"):
        from apps.compliance.reports.pdf import parse_pdf

        return parse_pdf(raw)
    if raw.startswith(b"PK"):
        return parse_xlsx(raw)
    return parse_csv(raw)


@dataclass
class VerifyResult:
    format: str
    kind: str
    declared_hash: str
    computed_hash: str
    anchors_declared_hash: str
    anchors_computed_hash: str
    printed_hash_ok: bool | None = None
    anchors_checked: int = 0
    anchors_problems: list[str] = field(default_factory=list)
    db_hash: str | None = None
    signer: str = ""
    seal_problem: str | None = None
    problems: list[str] = field(default_factory=list)
    anchor: DocumentAnchorStatus | None = None
    anchor_problem: str | None = None  # the content hash was never anchored nor queued by us
    anchor_pending: str | None = None  # queued by us, not on chain yet

    @property
    def verdict(self) -> str:
        """FORGED: not sealed by the cooperative's key, or its content hash was never anchored
        on chain nor queued for anchoring by the cooperative (whatever else holds); TAMPERED:
        sealed, but the file, the database or an anchor no longer agrees with it;
        NOT_YET_ANCHORED: intact, but the outbox has not put its content hash on chain yet;
        VERIFIED otherwise."""
        if self.seal_problem or self.anchor_problem:
            return "FORGED"
        if self.problems:
            return "TAMPERED"
        return "NOT_YET_ANCHORED" if self.anchor_pending else "VERIFIED"

    def anchor_dict(self) -> dict[str, Any] | None:
        a = self.anchor
        if a is None:
            return None
        if a.anchored:
            state = "anchored"
        elif a.intent_id is not None:
            state = "not yet anchored"
        else:
            state = "never anchored"
        if a.source == "chain":
            answered = f"asked the chain (MeterOracle {a.contract_address})"
        else:
            answered = f"the chain did not answer ({a.chain_error}); from the local record"
        return {
            "state": state,
            "source": a.source,
            "answered_by": answered,
            "kind": a.kind,
            "digest": a.digest,
            "anchored_at": a.anchored_at.isoformat() if a.anchored_at else None,
            "intent": a.intent_id,
            "intent_status": a.intent_status,
            "tx_hash": a.tx_hash,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "format": self.format,
            "kind": self.kind,
            "content_sha256_declared": self.declared_hash,
            "content_sha256_computed": self.computed_hash,
            "anchors_sha256_declared": self.anchors_declared_hash,
            "anchors_sha256_computed": self.anchors_computed_hash,
            "printed_hash_ok": self.printed_hash_ok,
            "signer": self.signer,
            "trusted_signer": trusted_signer_address(),
            "anchors_checked": self.anchors_checked,
            "content_sha256_from_database": self.db_hash,
            "document_anchor": self.anchor_dict(),
            "problems": self.problems
            + [p for p in (self.anchor_problem, self.anchor_pending) if p],
        }


def _check_anchor(anchor: dict[str, Any]) -> str | None:
    """Compare one declared anchor with the chain app's record (and the chain, when reachable)."""
    if anchor.get("type") == "meter_anchor":
        if "interval_start" not in anchor or "version" not in anchor:
            return f"malformed meter anchor: {anchor}"
        row = meter_anchor_get(
            interval_start=datetime.fromisoformat(anchor["interval_start"]),
            version=anchor["version"],
        )
        if row is None:
            return f"meter anchor {anchor['interval_start']} v{anchor['version']} is unknown"
        if row.root != anchor.get("root"):
            return f"meter anchor {anchor['interval_start']}: root differs from the anchored one"
        if anchor.get("tx_hash") and row.tx_hash != anchor["tx_hash"]:
            return f"meter anchor {anchor['interval_start']}: transaction differs"
        return None
    if anchor.get("type") == "settlement_batch":
        root = settlement_run_trades_root(run_id=anchor.get("run"))
        if root is None or root != anchor.get("trades_root"):
            return f"settlement run {anchor.get('run')}: trades root differs from the settled one"
        return None
    if anchor.get("intent"):
        intent = chain_intent_get(intent_id=anchor["intent"])
        if intent is None:
            return f"chain intent {anchor['intent']} is unknown"
        if anchor.get("tx_hash") and intent.tx_hash != anchor["tx_hash"]:
            return f"chain intent {anchor['intent']}: transaction differs"
    return None


def _check_document_anchor(result: VerifyResult, declared: dict[str, Any]) -> None:
    """Was the signed content hash anchored on chain by the cooperative? The lookup is by hash:
    the declared one when the seal is genuine (data that no longer matches it is TAMPERED, found
    by the hash comparison), else the hash of the data the file carries. The file's own anchor
    reference is only compared, never trusted."""
    digest = result.declared_hash if not result.seal_problem else result.computed_hash
    if not re.fullmatch(r"[0-9a-f]{64}", digest or ""):
        result.anchor_problem = "the report carries no content hash to look up on chain"
        return
    status = document_anchor_status(kind=REPORT_ANCHOR_KIND, digest="0x" + digest)
    result.anchor = status
    if status.anchored:
        if status.intent_id is None:
            result.anchor_problem = (
                "the content hash is anchored on chain, but the cooperative never queued that "
                "anchor (the document-anchoring key was used outside the outbox)"
            )
            return
    elif status.intent_id is None:
        result.anchor_problem = (
            "the content hash was never anchored on chain nor queued for anchoring by the "
            f"cooperative (asked: {status.source})"
        )
        return
    elif status.intent_status == "confirmed" and status.source == "chain":
        result.problems.append(
            f"the local record says outbox intent #{status.intent_id} anchored the content hash, "
            "but the chain does not have it"
        )
    else:
        result.anchor_pending = (
            f"not yet anchored: the content hash is queued as outbox intent "
            f"#{status.intent_id} ({status.intent_status}; asked: {status.source})"
        )
    if declared and (
        declared.get("digest") != status.digest
        or (status.intent_id is not None and declared.get("intent") != status.intent_id)
    ):
        result.problems.append(
            "the file's document anchor reference differs from the anchor of its content hash"
        )


def report_verify(
    raw: bytes, *, against_db: bool = False, check_anchors: bool = True
) -> VerifyResult:
    """Recompute a report file's hashes from its own content; optionally rebuild it from the
    database with the parameters it declares and compare; check its anchors."""
    try:
        parsed = report_parse(raw)
    except (ValueError, KeyError) as exc:
        raise ApplicationError(f"Not an EnergySphere report: {exc}", {}) from exc
    meta = parsed.meta
    result = VerifyResult(
        format=parsed.format,
        kind=meta.get("kind", ""),
        declared_hash=meta.get("content_sha256", ""),
        computed_hash=parsed.computed_hash,
        anchors_declared_hash=meta.get("anchors_sha256", ""),
        anchors_computed_hash=parsed.computed_anchors_hash,
    )
    result.signer = str(meta.get("signer", ""))
    result.seal_problem = report_seal_problem(meta)
    if result.seal_problem:
        result.problems.append(result.seal_problem)
    if result.declared_hash != result.computed_hash:
        result.problems.append("the data does not match the declared content hash")
    if result.anchors_declared_hash != result.anchors_computed_hash:
        result.problems.append("the anchors do not match the declared anchors hash")
    if parsed.format == "pdf":
        printed = "".join(parsed.text.split())
        result.printed_hash_ok = result.declared_hash in printed
        if not result.printed_hash_ok:
            result.problems.append("the hash printed on the PDF differs from the embedded one")
        for label, value in meta.get("totals", []):
            if f"{label}{value}".replace(" ", "") not in printed.replace(" ", ""):
                result.problems.append(
                    f"the PDF's printed total {label!r} differs from its embedded data ({value})"
                )
    if check_anchors:
        _check_document_anchor(result, meta.get("document_anchor") or {})
    for anchor in meta.get("anchors", []) if check_anchors else []:
        result.anchors_checked += 1
        problem = _check_anchor(anchor)
        if problem:
            result.anchors_problems.append(problem)
            result.problems.append(problem)
    if against_db:
        params = meta.get("params", {})
        doc = report_build(
            kind=result.kind,
            start=datetime.fromisoformat(params["start"]),
            end=datetime.fromisoformat(params["end"]),
            member_id=params.get("member_id"),
            pinned={k: params[k] for k in REPORTS[result.kind].pinned if k in params},
        )
        result.db_hash = doc.content_hash
        if doc.content_hash != result.computed_hash:
            result.problems.append("the database no longer gives the same data for this report")
    return result
