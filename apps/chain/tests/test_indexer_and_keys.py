"""Event indexer (persisted cursor, idempotent re-scan), keys and member addresses."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, transaction
from eth_account import Account

from apps.chain import client
from apps.chain.indexer import _promote_intent, chain_event_indexed, chain_events_index
from apps.chain.lock_objects import chain_intent_lock
from apps.chain.models import ChainEvent, ChainIntent, IndexerCursor
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_intent_submit, member_chain_address

pytestmark = pytest.mark.chain


def test_indexer_stores_each_event_once_and_advances_its_cursor(
    chain, django_capture_on_commit_callbacks
):
    seen = []

    def on_event(sender, event, **kwargs):
        seen.append(event.name)

    chain_event_indexed.connect(on_event)
    try:
        chain_intent_submit(
            intent="dr_event_record",
            payload={"event_id": 77, "modification": 1, "start": 1_767_225_600,
                     "end": 1_767_229_200, "target_w": 5_000, "signal_hash": "0x" + "01" * 32},
            idempotency_key="dr-77",
        )  # fmt: skip
        chain_outbox_sweep()
        with django_capture_on_commit_callbacks(execute=True):
            stored = chain_events_index()
        head = chain.w3.eth.block_number
        assert IndexerCursor.objects.get(network="local").last_block == head
        dr = ChainEvent.objects.get(name="DrEventRecorded")
        assert dr.contract == "GridBalancer" and dr.args["eventId"] == 77
        assert dr.args["targetW"] == 5_000
        assert "DrEventRecorded" in seen
        total = ChainEvent.objects.count()
        assert stored == total  # deployment events (role grants) included
        # re-scan from the start: nothing new
        IndexerCursor.objects.filter(network="local").update(last_block=-1)
        assert chain_events_index() == 0
        assert ChainEvent.objects.count() == total
    finally:
        chain_event_indexed.disconnect(on_event)


def test_keystore_key_is_used_and_a_wrong_password_is_a_clear_error(chain, settings, tmp_path):
    account = Account.create()
    path = tmp_path / "operator.json"
    path.write_text(
        json.dumps(Account.encrypt(account.key, "s3cret-pass", kdf="pbkdf2", iterations=1000))
    )
    settings.CHAIN_KEYSTORE_PATH = str(path)
    settings.CHAIN_KEYSTORE_PASSWORD = "s3cret-pass"
    assert client.operator_account().address == account.address
    settings.CHAIN_KEYSTORE_PASSWORD = "wrong"
    with pytest.raises(client.ChainConfigError, match="Cannot decrypt keystore"):
        client.operator_account()
    settings.CHAIN_OPERATOR_KEY = "not-a-key"
    with pytest.raises(client.ChainConfigError, match="not a valid private key"):
        client.operator_account()


def test_member_address_is_the_wallet_or_a_stable_custodial_one(chain, member_factory, settings):
    a, b = member_factory(), member_factory()
    custodial = member_chain_address(a)
    assert custodial == member_chain_address(a)  # deterministic
    assert custodial != member_chain_address(b)
    assert custodial.startswith("0x") and len(custodial) == 42
    a.wallet_address = "0x" + "Ab" * 20
    assert member_chain_address(a) == a.wallet_address
    settings.BLOCKCHAIN_NETWORK = "https://rpc.example.invalid"
    with pytest.raises(client.ChainConfigError, match="CHAIN_CUSTODY_SECRET"):
        member_chain_address(b)
    settings.CHAIN_CUSTODY_SECRET = "another-secret"
    assert member_chain_address(b) != custodial


def test_health_reports_ok_then_the_problem(chain, settings):
    assert client.chain_health() == "ok"
    settings.BLOCKCHAIN_CHAIN_ID = 1
    assert "Wrong chain id" in client.chain_health()


def test_health_notices_a_reset_chain(chain):
    from apps.chain.models import ContractDeployment

    ContractDeployment.objects.filter(name="MeterOracle").update(address="0x" + "12" * 20)
    assert "no code at the recorded address of MeterOracle" in client.chain_health()


@pytest.mark.django_db(transaction=True)
def test_indexer_leaves_an_intent_the_outbox_sweep_holds_instead_of_waiting_for_it():
    """The sweep records receipts in one transaction (rows in nonce order) while the indexer
    promotes the same intents in log order: if the indexer waited for a row the sweep holds, the
    two could deadlock. It skips the row; the sweep marks it mined itself."""
    tx_hash = "0x" + "ab" * 32
    row = ChainIntent.objects.create(
        intent="meter_anchor", payload={}, idempotency_key="promote-locked", network="anvil",
        status=ChainIntent.Status.SENT, tx_hash=tx_hash, tx_hashes=[tx_hash],
    )  # fmt: skip
    locked, release = threading.Event(), threading.Event()

    def sweep_holding_the_row():
        try:
            with transaction.atomic():
                chain_intent_lock(row.pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=sweep_holding_the_row)
    holder.start()
    try:
        assert locked.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")  # waiting would fail here
            _promote_intent(tx_hash, 123)
        row.refresh_from_db()
        assert row.status == ChainIntent.Status.SENT  # left to the sweep
    finally:
        release.set()
        holder.join(30)
    with transaction.atomic():
        _promote_intent(tx_hash, 123)  # once free, the indexer promotes it
    row.refresh_from_db()
    assert (row.status, row.block_number) == (ChainIntent.Status.MINED, 123)
