"""camt.053 bank statements: a small, strict reader (lxml; a pure module, no Django).

Why not pycamt: it replaces an entry's booked amount with the first amount of its transaction
details (for a direct-debit return that is the original instructed amount, so the bank's fee is
lost) and reads neither the return reason (RtrInf) nor the charges (Chrgs), which are exactly
what reconciling returns needs. This reader takes what billing matches on and nothing else,
works for every camt.053.001.xx version (elements are found by local name) and resolves no
entities and no network resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from lxml import etree


class CamtError(ValueError):
    """The file is not a readable camt.053 statement."""


@dataclass(frozen=True, slots=True)
class CamtEntry:
    amount: Decimal  # + credit, − debit (booked amount, charges included)
    currency: str
    booked: bool
    reversal: bool
    booking_date: date
    end_to_end_id: str
    reference: str  # structured creditor reference, else the unstructured remittance text
    counterparty: str
    return_reason: str
    instructed_amount: Decimal | None
    charges: Decimal


@dataclass(frozen=True, slots=True)
class CamtStatement:
    message_id: str
    statement_ids: tuple[str, ...]
    ibans: tuple[str, ...]
    entries: tuple[CamtEntry, ...]


def _text(node, path: str) -> str:
    found = node.find(path) if node is not None else None
    return (found.text or "").strip() if found is not None else ""


def _amount(node, path: str) -> Decimal | None:
    raw = _text(node, path)
    if not raw:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation as exc:
        raise CamtError(f"Not an amount: {raw!r}.") from exc


def _entries(ntry) -> list[CamtEntry]:
    """One entry per booked transaction: a batch booking (several TxDtls) is split into its
    transactions, each with its own amount."""
    amount = _amount(ntry, "{*}Amt")
    if amount is None:
        raise CamtError("An entry has no amount.")
    sign = Decimal(-1) if _text(ntry, "{*}CdtDbtInd") == "DBIT" else Decimal(1)
    status = _text(ntry, "{*}Sts/{*}Cd") or _text(ntry, "{*}Sts")
    day = _text(ntry, "{*}BookgDt/{*}Dt") or _text(ntry, "{*}BookgDt/{*}DtTm")[:10]
    try:
        booking_date = date.fromisoformat(day)
    except ValueError as exc:
        raise CamtError(f"An entry has no booking date ({day!r}).") from exc
    txs = ntry.findall("{*}NtryDtls/{*}TxDtls")
    batch = len(txs) > 1
    out = []
    for tx in txs or [None]:
        scope = tx if batch else ntry
        tx_amount = amount
        if batch:
            found = [
                _amount(tx, path)
                for path in (
                    "{*}Amt",
                    "{*}AmtDtls/{*}TxAmt/{*}Amt",
                    "{*}AmtDtls/{*}InstdAmt/{*}Amt",
                )
            ]
            picked = next((a for a in found if a is not None), None)
            if picked is None:
                raise CamtError("A transaction of a batch booking has no amount.")
            tx_amount = picked
        charges = Decimal(0)
        for charge in scope.iterfind(".//{*}Chrgs//{*}Amt"):
            charges += _amount(charge, ".") or Decimal(0)
        ustrd = tx.iterfind("{*}RmtInf/{*}Ustrd") if tx is not None else []
        reference = _text(tx, "{*}RmtInf/{*}Strd/{*}CdtrRefInf/{*}Ref") or " ".join(
            (u.text or "").strip() for u in ustrd
        )
        counterparty = _text(tx, "{*}RltdPties/{*}Dbtr/{*}Nm") or _text(
            tx, "{*}RltdPties/{*}Cdtr/{*}Nm"
        )
        out.append(
            CamtEntry(
                amount=sign * tx_amount,
                currency=ntry.find("{*}Amt").get("Ccy", ""),
                booked=status in ("BOOK", ""),
                reversal=_text(ntry, "{*}RvslInd").lower() == "true",
                booking_date=booking_date,
                end_to_end_id=_text(tx, "{*}Refs/{*}EndToEndId").replace("NOTPROVIDED", ""),
                reference=reference.strip(),
                counterparty=counterparty,
                return_reason=_text(tx, "{*}RtrInf/{*}Rsn/{*}Cd"),
                instructed_amount=_amount(tx, "{*}AmtDtls/{*}InstdAmt/{*}Amt"),
                charges=charges,
            )
        )
    return out


def parse_camt053(content: bytes) -> CamtStatement:
    """Read a camt.053 document; CamtError with a plain message for anything else."""
    if not content or not content.lstrip().startswith(b"<"):
        raise CamtError("This file is not XML; a camt.053 bank statement is expected.")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise CamtError(f"This file is not well-formed XML ({exc.msg}).") from exc
    namespace = etree.QName(root).namespace or ""
    if "camt.053" not in namespace or root.find("{*}BkToCstmrStmt") is None:
        raise CamtError("This XML file is not a camt.053 bank statement.")
    body = root.find("{*}BkToCstmrStmt")
    message_id = _text(body, "{*}GrpHdr/{*}MsgId")
    if not message_id:
        raise CamtError("The statement has no message id (GrpHdr/MsgId).")
    statements = body.findall("{*}Stmt")
    if not statements:
        raise CamtError("The file contains no statement (Stmt).")
    return CamtStatement(
        message_id=message_id,
        statement_ids=tuple(_text(s, "{*}Id") for s in statements),
        ibans=tuple(_text(s, "{*}Acct/{*}Id/{*}IBAN") for s in statements),
        entries=tuple(e for s in statements for n in s.iterfind("{*}Ntry") for e in _entries(n)),
    )
