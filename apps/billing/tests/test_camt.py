"""The camt.053 reader (pure): any camt.053.001.xx version, booked amounts with charges, batch
bookings split into transactions, and clear errors for broken files."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.billing.camt import CamtError, parse_camt053
from apps.billing.tests.camt_builder import Entry, Tx, camt053

IBAN = "DE89370400440532013000"


def test_a_return_keeps_its_booked_amount_reason_and_fee_and_batches_are_split():
    content = camt053(message_id="M1", iban=IBAN, entries=[
        Entry(Decimal("30.00"), True, [Tx(Decimal("10.00"), "E1"), Tx(Decimal("20.00"), "E2")]),
        Entry(Decimal("23.00"), False, [Tx(Decimal("20.00"), "E2", return_reason="MD06",
                                           charges=Decimal("3.00"))]),
    ])  # fmt: skip
    statement = parse_camt053(content)
    assert statement.message_id == "M1" and statement.ibans == (IBAN,)
    credits = [(e.end_to_end_id, e.amount) for e in statement.entries if e.amount > 0]
    assert credits == [("E1", Decimal("10.00")), ("E2", Decimal("20.00"))]
    (ret,) = [e for e in statement.entries if e.amount < 0]
    assert (ret.amount, ret.return_reason, ret.charges) == (
        Decimal("-23.00"), "MD06", Decimal("3.00"),
    )  # fmt: skip


def test_newer_versions_are_read_by_local_name():
    content = camt053(message_id="M2", iban=IBAN, entries=[
        Entry(Decimal("5.00"), True, [Tx(Decimal("5.00"), ustrd="F2026-000001")])])  # fmt: skip
    v08 = content.replace(b"camt.053.001.02", b"camt.053.001.08")
    assert parse_camt053(v08).entries[0].reference == "F2026-000001"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not XML"),
        (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'><BkToCstmrStmt>"
         b"<GrpHdr/></BkToCstmrStmt></Document>", "no message id"),
        (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'><BkToCstmrStmt>"
         b"<GrpHdr><MsgId>X</MsgId></GrpHdr><Stmt><Ntry><Amt>ten</Amt></Ntry></Stmt>"
         b"</BkToCstmrStmt></Document>", "Not an amount"),
        (b'<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>', "not a camt.053"),
    ],
)  # fmt: skip
def test_broken_files_raise_a_clear_error(content, message):
    with pytest.raises(CamtError, match=message):
        parse_camt053(content)
