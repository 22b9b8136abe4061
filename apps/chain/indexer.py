"""Event indexer: contract events → ChainEvent rows, with a persisted block cursor.

Each run scans from the block after the cursor up to the head minus the confirmation depth (at most
``max_blocks`` blocks), stores every decoded event of our contracts (unique per transaction log, so
a re-scan of the same blocks changes nothing), promotes outbox rows whose transaction shows up in a
log (a safety net for the outbox's own receipt polling), sends ``chain_event_indexed`` for other
apps, then advances the cursor — all in one database transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import Signal
from eth_utils import event_abi_to_log_topic

from apps.chain import client
from apps.chain.lock_objects import indexer_cursor_lock, sent_intent_lock_for_indexer
from apps.chain.models import ChainEvent, ChainIntent, ContractDeployment

# Sent once per newly stored event: kwargs `event` (ChainEvent).
chain_event_indexed = Signal()


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, int) and abs(value) > 2**53:
        return str(value)  # JSON-safe for big integers (token ids, uint256)
    return value


def chain_events_index(*, max_blocks: int = 5_000) -> int:
    """Index the next range of blocks; returns the number of new events stored."""
    from django.conf import settings

    network = client.network_name()
    w3 = client.web3()
    client.check_chain_id(w3)
    deployments = list(ContractDeployment.objects.filter(network=network))
    if not deployments:
        return 0
    head = int(w3.eth.block_number) - max(0, int(settings.CHAIN_CONFIRMATIONS) - 1)
    by_address = {}
    for d in deployments:
        c = w3.eth.contract(address=d.address, abi=client.artifact(d.name)["abi"])
        topics = {
            event_abi_to_log_topic(item): c.events[item["name"]]()
            for item in c.abi
            if item["type"] == "event"
        }
        by_address[d.address.lower()] = (d.name, topics)
    with transaction.atomic():
        cursor = indexer_cursor_lock(network)
        start = cursor.last_block + 1
        end = min(head, start + max_blocks - 1)
        if end < start:
            return 0
        logs = w3.eth.get_logs(
            {
                "fromBlock": start,
                "toBlock": end,
                "address": [w3.to_checksum_address(a) for a in by_address],
            }
        )
        stored = 0
        for log in logs:
            name, topics = by_address[log["address"].lower()]
            event = topics.get(bytes(log["topics"][0])) if log["topics"] else None
            if event is None:
                continue
            decoded = event.process_log(log)
            tx_hash = "0x" + bytes(log["transactionHash"]).hex()
            row, created = ChainEvent.objects.get_or_create(
                network=network,
                tx_hash=tx_hash,
                log_index=int(log["logIndex"]),
                defaults={
                    "contract": name,
                    "name": decoded["event"],
                    "args": _jsonable(dict(decoded["args"])),
                    "block_number": int(log["blockNumber"]),
                },
            )
            if created:
                stored += 1
                _promote_intent(tx_hash, int(log["blockNumber"]))
                transaction.on_commit(
                    lambda row=row: chain_event_indexed.send(sender=ChainEvent, event=row)
                )
        cursor.last_block = end
        cursor.save(update_fields=["last_block", "updated_at"])
    return stored


def _promote_intent(tx_hash: str, block_number: int) -> None:
    """An outbox row still waiting although its transaction emitted an event: it is mined.

    A row locked by someone else is left alone (`skip_locked`): that is the outbox sweep
    recording the same receipt, in nonce order, while this runs in log order; waiting for it
    here deadlocked the two (seen under `make run`)."""
    row = sent_intent_lock_for_indexer(tx_hash)
    if row is None:
        return
    row.tx_hash = tx_hash
    row.block_number = block_number
    row.transition_to(
        ChainIntent.Status.MINED,
        actor="chain.indexer",
        update_fields=["tx_hash", "block_number", "updated_at"],
    )
