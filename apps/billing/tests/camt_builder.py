"""Build camt.053.001.02 statements for tests, as a bank would send them."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


@dataclass
class Tx:
    amount: Decimal
    end_to_end_id: str = "NOTPROVIDED"
    ustrd: str = ""
    name: str = "A member"
    return_reason: str = ""
    charges: Decimal | None = None
    creditor_reference: str = ""


@dataclass
class Entry:
    amount: Decimal
    credit: bool
    txs: list[Tx] = field(default_factory=list)
    booking_date: str = "2026-11-13"


def _tx(tx: Tx, credit: bool) -> str:
    party = "Dbtr" if credit else "Cdtr"
    rtr = (f"<RtrInf><Rsn><Cd>{tx.return_reason}</Cd></Rsn></RtrInf>"
           if tx.return_reason else "")  # fmt: skip
    chrgs = (f'<Chrgs><Amt Ccy="EUR">{tx.charges}</Amt></Chrgs>'
             if tx.charges is not None else "")  # fmt: skip
    rmt = f"<RmtInf><Ustrd>{tx.ustrd}</Ustrd></RmtInf>" if tx.ustrd else ""
    if tx.creditor_reference:
        rmt = (f"<RmtInf><Strd><CdtrRefInf><Ref>{tx.creditor_reference}</Ref></CdtrRefInf>"
               "</Strd></RmtInf>")  # fmt: skip
    return (
        f"<TxDtls><Refs><EndToEndId>{tx.end_to_end_id}</EndToEndId></Refs>"
        f'<AmtDtls><TxAmt><Amt Ccy="EUR">{tx.amount}</Amt></TxAmt></AmtDtls>{chrgs}'
        f"<RltdPties><{party}><Nm>{tx.name}</Nm></{party}></RltdPties>{rmt}{rtr}</TxDtls>"
    )


def camt053(*, message_id: str, iban: str, entries: list[Entry]) -> bytes:
    ntrys = "".join(
        f'<Ntry><Amt Ccy="EUR">{e.amount}</Amt><CdtDbtInd>{"CRDT" if e.credit else "DBIT"}'
        f"</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>{e.booking_date}</Dt></BookgDt>"
        f"<ValDt><Dt>{e.booking_date}</Dt></ValDt><BkTxCd/>"
        f"<NtryDtls>{''.join(_tx(t, e.credit) for t in e.txs)}</NtryDtls></Ntry>"
        for e in entries
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{NS}"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>2026-11-14T06:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{message_id}-1</Id><CreDtTm>2026-11-14T06:00:00</CreDtTm>"
        f"<Acct><Id><IBAN>{iban}</IBAN></Id></Acct>{ntrys}</Stmt>"
        f"</BkToCstmrStmt></Document>"
    ).encode()
