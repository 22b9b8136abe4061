"""Document anchoring (MeterOracle.anchorDocument): only the documents duty key may anchor, the
first anchor of a (kind, digest) stands, the outbox sends it with that key, the indexer records
it, our own anchors raise no alert and one we did not send does; the status selector asks the
chain and falls back to the local record when the chain does not answer."""

from __future__ import annotations

import pytest

from apps.chain.indexer import chain_events_index
from apps.chain.intents import PayloadError, document_kind, validate_payload
from apps.chain.models import ChainAlert, ChainEvent, ChainIntent
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.selectors import document_anchor_status, document_anchors_confirmed
from apps.chain.services import document_anchor_submit
from apps.core.exceptions import ApplicationError
from tests.fixtures.chain import free_port

from .test_contracts import reverts, send

pytestmark = pytest.mark.chain

KIND = document_kind("compliance_report")
DIGEST = "0x" + "ab" * 32


def test_document_kinds_and_payloads_are_checked():
    assert document_kind("audit_head") == b"audit_head" + b"\0" * 22
    for bad in ("", "Audit", "a" * 33, "x-y", "1abc"):
        with pytest.raises(PayloadError):
            document_kind(bad)
    with pytest.raises(PayloadError):
        validate_payload("document_anchor", {"kind": "audit_head", "digest": "0x" + "00" * 32})
    with pytest.raises(PayloadError):
        validate_payload("document_anchor", {"kind": "audit_head", "digest": "0xab"})


def test_only_the_documents_key_anchors_and_the_first_anchor_stands(chain):
    oracle = chain.contract("MeterOracle")
    digest = bytes.fromhex(DIGEST[2:])
    for intruder in (chain.duty("anchoring"), chain.operator, chain.others[0], chain.signers[0]):
        reverts(oracle.functions.anchorDocument(KIND, digest), intruder,
                "AccessControlUnauthorizedAccount")  # fmt: skip
    # the documents key anchors documents and nothing else of MeterOracle
    reverts(oracle.functions.anchorBatch(1, 1, digest, 1), chain.duty("documents"),
            "AccessControlUnauthorizedAccount")  # fmt: skip
    reverts(oracle.functions.anchorDocument(KIND, bytes(32)), chain.duty("documents"),
            "ZeroDocument")  # fmt: skip
    assert oracle.functions.documentAnchoredAt(KIND, digest).call() == 0
    receipt = send(chain, oracle.functions.anchorDocument(KIND, digest), chain.duty("documents"))
    (event,) = oracle.events.DocumentAnchored().process_receipt(receipt)
    at = oracle.functions.documentAnchoredAt(KIND, digest).call()
    assert at > 0 and event["args"]["anchoredAt"] == at
    assert event["args"]["kind"] == KIND and event["args"]["digest"] == digest
    reverts(oracle.functions.anchorDocument(KIND, digest), chain.duty("documents"),
            "DocumentAlreadyAnchored")  # fmt: skip
    # the same digest under another kind is another document
    assert oracle.functions.documentAnchoredAt(document_kind("audit_head"), digest).call() == 0


def test_outbox_anchors_with_the_documents_key_and_the_indexer_stays_quiet(chain):
    row = document_anchor_submit(kind="compliance_report", digest=DIGEST)
    assert document_anchor_submit(kind="compliance_report", digest="0x" + "AB" * 32).pk == row.pk
    before = document_anchor_status(kind="compliance_report", digest=DIGEST)
    assert (before.anchored, before.source, before.intent_status) == (False, "chain", "pending")
    chain_outbox_sweep(wait_seconds=5)
    row.refresh_from_db()
    assert row.status == ChainIntent.Status.CONFIRMED, row.error
    assert row.sender == chain.duty("documents").address
    after = document_anchor_status(kind="compliance_report", digest=DIGEST)
    assert after.anchored and after.source == "chain" and after.anchored_at is not None
    assert after.tx_hash == row.tx_hash
    assert document_anchors_confirmed(kind="compliance_report") == [DIGEST]
    assert document_anchors_confirmed(kind="audit_head") == []
    chain_events_index()
    event = ChainEvent.objects.get(name="DocumentAnchored")
    assert event.tx_hash == row.tx_hash and event.args["digest"] == DIGEST
    assert ChainAlert.objects.count() == 0

    # the documents key used outside the outbox: an alert naming it
    other = bytes.fromhex("cd" * 32)
    oracle = chain.contract("MeterOracle")
    send(chain, oracle.functions.anchorDocument(KIND, other), chain.duty("documents"))
    chain_events_index()
    (alert,) = ChainAlert.objects.all()
    assert alert.event.name == "DocumentAnchored"
    assert "the documents duty key sent it outside the outbox" in alert.message


def test_status_falls_back_to_the_local_record_when_the_chain_is_unreachable(chain, settings):
    row = document_anchor_submit(kind="audit_head", digest=DIGEST)
    chain_outbox_sweep(wait_seconds=5)
    chain_events_index()
    settings.ANVIL_PORT = free_port()  # nothing listens there
    status = document_anchor_status(kind="audit_head", digest=DIGEST)
    assert status.source == "local record" and status.chain_error
    assert status.anchored and status.intent_id == row.pk and status.anchored_at is not None
    missing = document_anchor_status(kind="audit_head", digest="0x" + "ee" * 32)
    assert (missing.anchored, missing.source, missing.intent_id) == (False, "local record", None)


def test_a_malformed_digest_is_refused_before_the_outbox(chain):
    with pytest.raises(ApplicationError):
        document_anchor_submit(kind="compliance_report", digest="0x1234")
    with pytest.raises(ApplicationError):
        document_anchor_submit(kind="Not A Kind", digest=DIGEST)
    assert not ChainIntent.objects.exists()
