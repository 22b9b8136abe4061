"""Event indexer: contract events → ChainEvent rows, with a persisted block cursor.

Each run scans from the block after the cursor up to the head minus the confirmation depth (at most
``max_blocks`` blocks), stores every decoded event of our contracts (unique per transaction log, so
a re-scan of the same blocks changes nothing), promotes outbox rows whose transaction shows up in a
log (a safety net for the outbox's own receipt polling), raises a ``ChainAlert`` for every new
event nothing of ours explains, sends ``chain_event_indexed`` for other apps, then advances the
cursor — all in one database transaction.

Out-of-band detection: an event is ours when its transaction is one of our outbox intents, an
executed staff multisig proposal or a deployment transaction (sent by the deployer). Anything else
raises an alert when it is a privileged change (roles, caps, pausing, meter keys, rules, signers),
an event only a duty key can cause (mint, cancel, custody registration, settlement, anchor, meter
registration, award, grid records), or any event of a transaction sent by one of our duty keys
(a stolen key used outside the outbox). Members' own transfers and claims raise nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from eth_utils import event_abi_to_log_topic

from apps.chain import client
from apps.chain.lock_objects import indexer_cursor_lock, sent_intent_lock_for_indexer
from apps.chain.models import (
    ChainAlert,
    ChainEvent,
    ChainIntent,
    ContractDeployment,
    IndexerCursor,
)

logger = logging.getLogger(__name__)

PRIVILEGED_EVENTS = frozenset(
    {
        "RoleGranted", "RoleRevoked", "RoleAdminChanged", "Paused", "Unpaused", "MintCapSet",
        "AwardCapSet", "RedeemCapSet", "MeterKeyRotated", "MeterKeyVetoed", "MeterKeyDelaySet",
        "RuleSet", "SignerAdded", "SignerRemoved", "ThresholdChanged",
    }
)  # fmt: skip
# Events only a duty key (or EnergyTrading acting for the settlement key) can cause.
DUTY_EVENTS = frozenset(
    {
        ("EnergyToken", "CertificateIssued"), ("EnergyToken", "CertificateCancelled"),
        ("EnergyToken", "CustodialRegistered"), ("EnergyToken", "WalletLinked"),
        ("EnergyTrading", "SettlementApplied"), ("MeterOracle", "BatchAnchored"),
        ("MeterOracle", "MeterRegistered"), ("MeterOracle", "DocumentAnchored"),
        ("RenewableIncentive", "RewardAccrued"), ("RenewableIncentive", "RewardRedeemed"),
        ("GridBalancer", "DrEventRecorded"), ("GridBalancer", "CommitmentRecorded"),
        ("GridBalancer", "PerformanceRecorded"), ("GridBalancer", "StabilityRecorded"),
    }
)  # fmt: skip

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
    scanned = (
        IndexerCursor.objects.filter(network=network).values_list("last_block", flat=True).first()
    )
    if scanned is not None and head <= scanned:
        return 0  # no new block since the last run (most runs of an idle stack)
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
        new_rows: list[ChainEvent] = []
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
                new_rows.append(row)
                _promote_intent(tx_hash, int(log["blockNumber"]))
                transaction.on_commit(
                    lambda row=row: chain_event_indexed.send(sender=ChainEvent, event=row)
                )
        _alert_unexplained(w3, network, deployments, new_rows)
        cursor.last_block = end
        cursor.save(update_fields=["last_block", "updated_at"])
    return stored


def _our_duty_addresses() -> dict[str, str]:
    from apps.chain.intents import KEY_DUTIES
    from apps.chain.keys import duty_signer

    out = {}
    for duty in KEY_DUTIES:
        try:
            out[duty_signer(duty).address.lower()] = duty
        except client.ChainError:  # a duty without a usable key cannot have sent anything
            continue
    return out


def _alert_unexplained(w3: Any, network: str, deployments: list, rows: list[ChainEvent]) -> int:
    """Raise a ChainAlert for each new event nothing of ours explains; returns how many."""
    if not rows:
        return 0
    first_block = min(r.block_number for r in rows)
    ours: set[str] = set()
    for tx_hashes in ChainIntent.objects.filter(
        Q(block_number__gte=first_block) | Q(block_number__isnull=True), network=network
    ).values_list("tx_hashes", flat=True):
        ours.update(tx_hashes or [])
    rows = [r for r in rows if r.tx_hash not in ours]
    if not rows:
        return 0
    by_name = {d.name: d for d in deployments}
    multisig = by_name["StaffMultisig"].address.lower() if "StaffMultisig" in by_name else ""
    deployers = set()
    for d in deployments:
        if d.tx_hash:
            deployers.add(str(w3.eth.get_transaction(d.tx_hash)["from"]).lower())
    duty_keys = _our_duty_addresses()
    txs: dict[str, Any] = {}
    alerts = 0
    for row in rows:
        tx = txs.get(row.tx_hash)
        if tx is None:
            tx = txs[row.tx_hash] = w3.eth.get_transaction(row.tx_hash)
        sender = str(tx["from"]).lower()
        to = str(tx.get("to") or "").lower()
        if sender in deployers or (multisig and to == multisig):
            continue  # a deployment, or a staff-approved multisig execution
        if sender in duty_keys:
            why = f"the {duty_keys[sender]} duty key sent it outside the outbox"
        elif row.name in PRIVILEGED_EVENTS:
            why = "a privileged change not executed by the staff multisig"
        elif (row.contract, row.name) in DUTY_EVENTS:
            why = "no outbox intent of ours sent it"
        else:
            continue  # a member's own transfer, claim or approval
        message = f"Unexplained {row.contract}.{row.name} in block {row.block_number}: {why}."
        ChainAlert.objects.get_or_create(
            event=row, defaults={"network": network, "sender": sender, "message": message[:300]}
        )
        logger.warning("chain alert: %s (tx %s, from %s)", message, row.tx_hash, sender)
        alerts += 1
    return alerts


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
