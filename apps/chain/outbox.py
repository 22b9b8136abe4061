"""The transaction outbox worker: pending → signed → sent → mined → confirmed (or failed).

Every intent is signed with the key of its duty (``IntentSpec.duty``, keys in
``apps.chain.keys``); a sweep handles the duties one after the other, in ``DUTIES`` order (mint
before certificate moves and settlement). One sweep at a time per (network, sender), under a
PostgreSQL advisory lock: that lock and the ``ChainAccount`` row are the single nonce manager of a
key. For each duty, a sweep:

1. recovers in-flight rows (``signed``/``sent``): if any hash ever signed for the row has a receipt,
   the row is mined — nothing is sent again; a ``signed`` row is (re)broadcast with the *same* raw
   transaction (same hash, same nonce: it can only be mined once); a ``sent`` row without a
   receipt after ``CHAIN_RESEND_AFTER_SECONDS`` is replaced with a fee-bumped transaction for the
   same nonce;
2. signs and sends due ``pending`` rows: the call is simulated first (a revert fails the row with
   the decoded reason, before a nonce is taken); the signed raw transaction and its hash are
   committed *before* broadcasting, so a crash between signing and recording is recovered by
   step 1;
3. polls receipts of ``sent`` rows and promotes ``mined`` rows to ``confirmed`` at
   ``CHAIN_CONFIRMATIONS`` depth.

Infrastructure errors (unreachable RPC, wrong chain id, missing key, underpriced fee) are written
on the row with a back-off and the row stays where it is (retried automatically); a revert marks
the row ``failed`` (kept; staff retry it from the admin once the cause is fixed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import zlib
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound

from apps.chain import client
from apps.chain.intents import DUTIES, call_for, intents_of_duty
from apps.chain.keys import duty_signer
from apps.chain.lock_objects import chain_account_lock, pending_intents_lock_for_signing
from apps.chain.models import ChainIntent

logger = logging.getLogger(__name__)
S = ChainIntent.Status
IN_FLIGHT = (S.SIGNED, S.SENT)
OPEN = (*IN_FLIGHT, S.MINED)  # sent by us and not yet confirmed
DEFERRED = "deferred"  # simulation reverted while our earlier transactions are unconfirmed
BATCH = 50  # rows simulated, signed and sent per JSON-RPC batch

# Test hook: the worker SIGKILLs itself at this point (used by the crash-recovery test).
CRASH_ENV = "CHAIN_TEST_CRASH_AT"


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def _sender_lock(network: str, sender: str) -> Iterator[bool]:
    key = zlib.crc32(f"chain-outbox:{network}:{sender.lower()}".encode()) - 2**31
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


# The outbox worker is the actor of the status changes it makes.
OUTBOX_ACTOR = "chain.outbox"


def _save(row: ChainIntent, target: str, *, via: tuple[str, ...] = ()) -> None:
    """Save the whole row and move it to `target` (through `via`), skipping statuses it is in
    already; a row already in `target` is just saved."""
    hops = [s for s in via if s != row.status]
    if row.status == target and not hops:
        row.save()
        return
    row.transition_to(target, actor=OUTBOX_ACTOR, update_fields=None, via=hops)


def _record_error(row: ChainIntent, message: str, *, backoff: bool = True) -> None:
    row.error = message[:2000]
    if backoff:
        delay = min(300, 2 ** min(row.attempts, 8))
        row.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    row.save(update_fields=["error", "next_attempt_at", "updated_at"])


def _classify_send_error(exc: Exception) -> str:
    text = str(exc).lower()
    if "already known" in text or "known transaction" in text:
        return "known"
    if "nonce too low" in text or "nonce is too low" in text:
        return "nonce_low"
    if "underpriced" in text or "base fee" in text or "fee cap" in text or "feecap" in text:
        return "underpriced"
    return "other"


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _hash_hex(value: Any) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


class Outbox:
    """One sweep's context for one duty: the node, the duty's key and the network."""

    def __init__(self, duty: str) -> None:
        self.cfg = client.network_config()
        self.w3: Web3 = client.web3()
        self.duty = duty
        self.intents = intents_of_duty(duty)
        self.account = duty_signer(duty)
        self.sender = self.account.address
        self._next_nonce: int | None = None  # valid only while this sweep holds the sender lock
        self._base_fee: tuple[float, int] | None = None
        self._contracts: dict[str, Any] = {}

    def _current_base_fee(self) -> int:
        now = time.monotonic()
        if self._base_fee is None or now - self._base_fee[0] > 2.0:
            block = self.w3.eth.get_block("latest")
            self._base_fee = (now, int(block.get("baseFeePerGas") or 0))
        return self._base_fee[1]

    def rpc_batch(self, calls: list[tuple[str, list]]) -> list[dict[str, Any]]:
        """One JSON-RPC batch; each answer has "result" or "error" (in request order)."""
        if not calls:
            return []
        answers = self.w3.provider.make_batch_request(calls)
        if not isinstance(answers, list):
            raise client.ChainUnavailable(f"RPC batch request failed: {answers.get('error')}")
        return answers

    # --- fees and nonces ---------------------------------------------------------------------

    def _fees(self, previous: ChainIntent | None = None) -> tuple[int, int]:
        base = self._current_base_fee()
        priority = int(settings.CHAIN_PRIORITY_FEE_WEI)
        max_fee = 2 * base + priority
        if previous is not None and previous.max_fee_per_gas is not None:
            bump = 100 + int(settings.CHAIN_GAS_BUMP_PERCENT)
            max_fee = max(max_fee, int(previous.max_fee_per_gas) * bump // 100 + 1)
            priority = max(priority, int(previous.max_priority_fee_per_gas or 0) * bump // 100 + 1)
        cap = int(settings.CHAIN_MAX_FEE_CAP_WEI)
        if cap:
            max_fee = min(max_fee, cap)
        return max_fee, min(priority, max_fee)

    def _take_nonce(self, count: int = 1) -> int:
        """First of `count` consecutive nonces, under the ChainAccount row lock (call inside a
        transaction)."""
        account = chain_account_lock(network=self.cfg.name, address=self.sender)
        if self._next_nonce is not None:
            nonce = self._next_nonce
        else:
            chain_next = int(self.w3.eth.get_transaction_count(self.sender, "pending"))
            unsent = (
                ChainIntent.objects.filter(
                    network=self.cfg.name, sender=self.sender, status=S.SIGNED
                )
                .exclude(nonce=None)
                .order_by("-nonce")
                .values_list("nonce", flat=True)
                .first()
            )
            nonce = max(chain_next, (unsent + 1) if unsent is not None else 0)
        self._next_nonce = nonce + count
        account.next_nonce = nonce + count
        account.save(update_fields=["next_nonce", "updated_at"])
        return nonce

    # --- building, signing, broadcasting ----------------------------------------------------------

    def _call(self, row: ChainIntent) -> tuple[str, bytes]:
        spec, args = call_for(row.intent, row.payload)
        c = self._contracts.get(spec.contract)
        if c is None:
            c = self._contracts[spec.contract] = client.contract(spec.contract, w3=self.w3)
        data = c.functions[spec.function](*args)._encode_transaction_data()
        return c.address, HexBytes(data)

    def _sign(self, row: ChainIntent, *, nonce: int, gas: int, to: str, data: bytes) -> None:
        max_fee, priority = self._fees(row if row.tx_hash else None)
        tx = {
            "type": 2,
            "chainId": self.cfg.chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": priority,
        }
        signed = self.account.sign_transaction(tx)
        tx_hash = "0x" + bytes(signed.hash).hex()
        row.contract_address = to
        row.sender = self.sender
        row.nonce = nonce
        row.gas_limit = gas
        row.max_fee_per_gas = Decimal(max_fee)
        row.max_priority_fee_per_gas = Decimal(priority)
        row.tx_hash = tx_hash
        row.tx_hashes = [*row.tx_hashes, tx_hash]
        row.raw_tx = "0x" + bytes(signed.raw_transaction).hex()

    def _broadcast(self, row: ChainIntent) -> None:
        self._broadcast_many([row])

    def _broadcast_many(self, rows: list[ChainIntent]) -> None:
        """Send the rows' signed raw transactions (one RPC batch); record SENT or the error."""
        answers = self.rpc_batch([("eth_sendRawTransaction", [row.raw_tx]) for row in rows])
        sent = []
        for row, answer in zip(rows, answers, strict=True):
            error = answer.get("error")
            if not error:
                sent.append(row)
                continue
            message = str(error.get("message", error))
            kind = _classify_send_error(Exception(message))
            if kind == "known":
                sent.append(row)  # the node already has exactly this transaction
            elif kind == "nonce_low":
                if self._find_receipt(row) is None:
                    self._abandon_nonce(row, f"nonce {row.nonce} was used by another transaction")
                else:
                    sent.append(row)
            elif kind == "underpriced":
                _record_error(row, f"Underpriced gas: {message}. Re-signing with a higher fee.")
            else:
                _record_error(row, f"Broadcast failed: {message}")
        _crash_point("after_broadcast")
        if not sent:
            return
        now = timezone.now()
        with transaction.atomic():
            for row in sent:
                row.sent_at = now
                row.error = ""
                row.next_attempt_at = None
                row.updated_at = now
            ChainIntent.transition_each(
                [(row, S.SENT) for row in sent],
                actor=OUTBOX_ACTOR,
                update_fields=["sent_at", "error", "next_attempt_at", "updated_at"],
            )

    def _abandon_nonce(self, row: ChainIntent, reason: str) -> None:
        """None of our hashes is on chain and the nonce is consumed: sign afresh later."""
        with transaction.atomic():
            row.tx_hash = ""
            row.raw_tx = ""
            row.nonce = None
            row.error = reason
            _save(row, S.PENDING)

    def _find_receipt(self, row: ChainIntent) -> Any:
        for tx_hash in reversed(row.tx_hashes or [row.tx_hash]):
            if not tx_hash:
                continue
            try:
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                continue
            if receipt is not None:
                return receipt
        return None

    # --- steps ----------------------------------------------------------------------------------

    def recover(self, row: ChainIntent) -> None:
        receipt = self._find_receipt(row)
        if receipt is not None:
            self._mined(row, receipt)
            return
        if row.status == S.SIGNED:
            if row.error.startswith("Underpriced"):
                self._resign(row)
            self._broadcast(row)
            return
        # SENT and no receipt: replace it with a bumped fee once it has waited long enough.
        waited = timezone.now() - (row.sent_at or row.updated_at)
        if waited.total_seconds() >= settings.CHAIN_RESEND_AFTER_SECONDS:
            self._resign(row)
            self._broadcast(row)

    def _resign(self, row: ChainIntent) -> None:
        """Replacement transaction: same nonce, same call, higher fees."""
        with transaction.atomic():
            data = HexBytes(self._call(row)[1])
            self._sign(row, nonce=row.nonce, gas=row.gas_limit, to=row.contract_address, data=data)
            row.attempts += 1
            if row.status == S.SENT:
                _save(row, S.SIGNED)
            else:
                row.save()

    def in_flight(self) -> bool:
        """Whether transactions of ours (any duty's key) are still unconfirmed."""
        return ChainIntent.objects.filter(network=self.cfg.name, status__in=IN_FLIGHT).exists()

    def waits_on_other_duty(self, row: ChainIntent) -> bool:
        """Whether an earlier intent of another duty is still open (pending or in flight): `row`
        may depend on it (e.g. a cancel on the custody registration before it)."""
        return (
            ChainIntent.objects.filter(
                network=self.cfg.name, pk__lt=row.pk, status__in=(S.PENDING, *IN_FLIGHT)
            )
            .exclude(intent__in=self.intents)
            .exists()
        )

    def submit(self, row: ChainIntent) -> str:
        """PENDING → SIGNED → SENT for one row; returns its status afterwards (or DEFERRED)."""
        return self.submit_many([row])[row.pk]

    def submit_many(self, rows: list[ChainIntent]) -> dict[int, str]:
        """Simulate, sign and send pending rows in id order, with one RPC batch per step.

        Simulation happens before a nonce is taken. A row whose simulation reverts while other
        transactions of ours will be unconfirmed (sent in this batch or before), or while an
        earlier intent of another duty is still open, is DEFERRED: it may depend on one of them
        (e.g. a DR commitment on an event recorded just before, a cancel on the custody
        registration before it).
        """
        prepared = [(row, *self._call(row)) for row in rows]
        answers = self.rpc_batch(
            [
                ("eth_estimateGas", [{"from": self.sender, "to": to, "data": "0x" + data.hex()}])
                for _row, to, data in prepared
            ]
        )
        result: dict[int, str] = {}
        ok, reverted = [], []
        for (row, to, data), answer in zip(prepared, answers, strict=True):
            error = answer.get("error")
            if not error:
                ok.append((row, to, data, _int(answer["result"])))
                continue
            revert_data = error.get("data")
            message = str(error.get("message", error))
            if isinstance(revert_data, str) and revert_data.startswith("0x"):
                reverted.append((row, client.decode_revert(revert_data)))
            elif "revert" in message.lower():
                reverted.append((row, message))
            else:
                row.attempts += 1
                _record_error(row, f"Simulation failed: {message}")
                result[row.pk] = row.status
        others_in_flight = bool(ok) or self.in_flight()
        for row, reason in reverted:
            if others_in_flight or self.waits_on_other_duty(row):
                row.error = (
                    f"Simulation reverted ({reason}) while earlier transactions are "
                    "unconfirmed; retried once they are mined."
                )
                row.save(update_fields=["error", "updated_at"])
                result[row.pk] = DEFERRED
            else:
                self._failed(row, f"Reverted in simulation: {reason}")
                result[row.pk] = row.status
        signed = self._sign_many(ok)
        _crash_point("after_record")
        if signed:
            self._broadcast_many(signed)
        for row in signed:
            result[row.pk] = row.status
        for row, *_ in ok:
            result.setdefault(row.pk, row.status)
        return result

    def _sign_many(self, ok: list[tuple[ChainIntent, str, bytes, int]]) -> list[ChainIntent]:
        """Take nonces and sign, all recorded in one transaction *before* anything is sent."""
        if not ok:
            return []
        try:
            with transaction.atomic():
                locked = {
                    r.pk: r for r in pending_intents_lock_for_signing([row.pk for row, *_ in ok])
                }
                signed = []
                now = timezone.now()
                todo = [item for item in sorted(ok, key=lambda i: i[0].pk) if item[0].pk in locked]
                if not todo:
                    return []
                first = self._take_nonce(len(todo))
                for offset, (row, to, data, estimate) in enumerate(todo):
                    target = locked[row.pk]
                    gas = int(estimate * 12 // 10) + 10_000
                    self._sign(target, nonce=first + offset, gas=gas, to=to, data=data)
                    target.attempts += 1
                    target.error = ""
                    target.updated_at = now
                    signed.append(target)
                ChainIntent.transition_each(
                    [(row, S.SIGNED) for row in signed],
                    actor=OUTBOX_ACTOR,
                    update_fields=[
                        "contract_address", "sender", "nonce", "gas_limit",
                        "max_fee_per_gas", "max_priority_fee_per_gas", "tx_hash", "tx_hashes",
                        "raw_tx", "attempts", "error", "updated_at",
                    ],
                )  # fmt: skip
                _crash_point("after_sign")
        except BaseException:
            self._next_nonce = None  # the nonces were not recorded: ask the chain again
            raise
        return signed

    def _failed(self, row: ChainIntent, message: str) -> None:
        with transaction.atomic():
            row.attempts += 1
            row.error = message[:2000]
            row.retryable = True
            _save(row, S.FAILED)
        logger.warning("chain intent %s failed: %s", row.pk, message)

    def _mined(self, row: ChainIntent, receipt: Any) -> None:
        with transaction.atomic():
            # A signed row whose receipt arrives was sent (by us, before a crash).
            via = (S.SENT,) if row.status == S.SIGNED else ()
            row.tx_hash = _hash_hex(receipt["transactionHash"])
            row.block_number = _int(receipt["blockNumber"])
            row.gas_used = _int(receipt["gasUsed"])
            if _int(receipt["status"]) == 1:
                row.error = ""
                if settings.CHAIN_CONFIRMATIONS <= 1:  # the receipt itself is the confirmation
                    row.confirmed_at = timezone.now()
                    _save(row, S.CONFIRMED, via=(*via, S.MINED))
                else:
                    _save(row, S.MINED, via=via)
                return
            if via:
                _save(row, S.SENT)
            else:
                row.save()
        self._failed(
            row, f"Reverted on chain in block {row.block_number}: {self._revert_reason(row)}"
        )

    def _revert_reason(self, row: ChainIntent) -> str:
        try:
            self.w3.eth.call(
                {"from": self.sender, "to": row.contract_address, "data": self._call(row)[1]},
                row.block_number,  # replayed on the state after that block
            )
        except ContractLogicError as exc:
            return client.decode_revert(exc.data)
        except Exception as exc:  # noqa: BLE001
            return f"unknown ({exc.__class__.__name__})"
        return "unknown (the call succeeds when replayed)"

    def poll(self, row: ChainIntent) -> bool:
        receipt = self._find_receipt(row)
        if receipt is None:
            return False
        self._mined(row, receipt)
        return True

    def confirm(self, row: ChainIntent, head: int) -> None:
        if head - row.block_number + 1 >= settings.CHAIN_CONFIRMATIONS:
            with transaction.atomic():
                row.confirmed_at = timezone.now()
                _save(row, S.CONFIRMED)


def _due(qs: Any) -> Any:
    return qs.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))


def _note_infrastructure_error(network: str, message: str, intents: list[str] | None = None) -> int:
    """Write a configuration/connection error on every due open row of the network (of the
    given intents only, when a single duty's key is the problem)."""
    qs = ChainIntent.objects.filter(network=network, status__in=(S.PENDING, *IN_FLIGHT))
    if intents is not None:
        qs = qs.filter(intent__in=intents)
    rows = list(_due(qs))
    for row in rows:
        row.attempts += 1
        _record_error(row, message)
    return len(rows)


def chain_outbox_sweep(*, limit: int = 500, wait_seconds: float | None = None) -> dict[str, int]:
    """Advance every due outbox row of the current network as far as it goes now.

    Returns counts per step. Safe to call concurrently (one sweep per sender runs; the others
    return at once) and after a crash (in-flight rows are recovered, never sent twice).
    """
    network = client.network_name()
    counts = {"recovered": 0, "sent": 0, "mined": 0, "confirmed": 0, "failed": 0, "skipped": 0}
    open_rows = ChainIntent.objects.filter(network=network, status__in=(S.PENDING, *OPEN))
    if not _due(open_rows).exists():
        return counts  # nothing to send, poll or confirm: the node is not asked anything
    try:
        client.check_chain_id()
    except client.ChainError as exc:
        return {"errors": _note_infrastructure_error(network, exc.message)}
    for duty in DUTIES:
        try:
            outbox = Outbox(duty)
        except client.ChainError as exc:  # this duty's key is missing or refused
            errors = _note_infrastructure_error(network, exc.message, intents_of_duty(duty))
            counts["errors"] = counts.get("errors", 0) + errors
            continue
        if not _duty_sweep(outbox, network, limit, wait_seconds, counts):
            break
    return counts


def _duty_sweep(
    outbox: Outbox, network: str, limit: int, wait_seconds: float | None, counts: dict[str, int]
) -> bool:
    """One duty's sweep; False when the node is unreachable (the other duties wait too)."""
    if not _due(
        ChainIntent.objects.filter(
            Q(status=S.PENDING, intent__in=outbox.intents)
            | Q(status__in=(*IN_FLIGHT, S.MINED), sender=outbox.sender),
            network=network,
        )
    ).exists():
        return True
    with _sender_lock(network, outbox.sender) as acquired:
        if not acquired:
            counts["skipped"] += 1
            return True
        try:
            _sweep(outbox, network, limit, wait_seconds, counts)
        except client.ChainError as exc:
            counts["errors"] = counts.get("errors", 0) + _note_infrastructure_error(
                network, exc.message
            )
            return False
        except Exception as exc:
            if not _is_connection_error(exc):
                raise
            message = f"RPC node {outbox.cfg.rpc_url} is unreachable: {exc.__class__.__name__}"
            counts["errors"] = counts.get("errors", 0) + _note_infrastructure_error(
                network, message
            )
            return False
    return True


def _is_connection_error(exc: Exception) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout)


def _sweep(
    outbox: Outbox, network: str, limit: int, wait_seconds: float | None, counts: dict[str, int]
) -> None:
    base = ChainIntent.objects.filter(network=network)
    # 1. recovery of in-flight rows (ours; rows of another sender key are left alone)
    for row in _due(base.filter(status__in=IN_FLIGHT, sender=outbox.sender)).order_by("nonce"):
        outbox.recover(row)
        counts["recovered"] += 1
    wait = settings.CHAIN_RECEIPT_WAIT_SECONDS if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    rows = list(
        _due(base.filter(status=S.PENDING, intent__in=outbox.intents)).order_by("id")[:limit]
    )
    for _pass in range(3):
        # 2. new rows (then, in later passes, the ones deferred behind unconfirmed transactions)
        deferred = []
        for chunk in range(0, len(rows), BATCH):
            part = rows[chunk : chunk + BATCH]
            statuses = outbox.submit_many(part)
            for row in part:
                status = statuses.get(row.pk)
                if status == DEFERRED:
                    deferred.append(row)
                elif status == S.FAILED:
                    counts["failed"] += 1
                elif status in (S.SENT, S.MINED, S.CONFIRMED):
                    counts["sent"] += 1
        # 3. receipts
        _poll_receipts(outbox, base, deadline, counts)
        if not deferred or outbox.in_flight():
            counts["deferred"] = len(deferred)
            break
        rows = deferred
    # 4. confirmations
    head = int(outbox.w3.eth.block_number)
    for row in base.filter(status=S.MINED).order_by("block_number"):
        outbox.confirm(row, head)
        if row.status == S.CONFIRMED:
            counts["confirmed"] += 1


# Receipt polling within one sweep: the first round at once, then waits growing from 0.2 s to
# 2 s (one RPC batch over every open row per round: polling hundreds of rows five times a second
# kept the node busy while the demo's intents were sent).
POLL_FIRST_WAIT = 0.2
POLL_MAX_WAIT = 2.0


def _poll_receipts(outbox: Outbox, base: Any, deadline: float, counts: dict[str, int]) -> None:
    """Receipts of sent rows (one RPC batch per round); mined rows recorded in one transaction."""
    wait = POLL_FIRST_WAIT
    while True:
        open_rows = list(base.filter(status=S.SENT, sender=outbox.sender).order_by("nonce"))
        answers = outbox.rpc_batch(
            [("eth_getTransactionReceipt", [row.tx_hash]) for row in open_rows]
        )
        ok, reverted = [], []
        for row, answer in zip(open_rows, answers, strict=True):
            receipt = answer.get("result")
            if not receipt:
                continue
            (ok if _int(receipt["status"]) == 1 else reverted).append((row, receipt))
        if ok:
            now = timezone.now()
            with transaction.atomic():
                confirmed = settings.CHAIN_CONFIRMATIONS <= 1  # the receipt is the confirmation
                for row, receipt in ok:
                    row.tx_hash = _hash_hex(receipt["transactionHash"])
                    row.block_number = _int(receipt["blockNumber"])
                    row.gas_used = _int(receipt["gasUsed"])
                    if confirmed:
                        row.confirmed_at = now
                        counts["confirmed"] += 1
                    row.error = ""
                    row.updated_at = now
                ChainIntent.transition_each(
                    [(row, S.CONFIRMED if confirmed else S.MINED) for row, _ in ok],
                    actor=OUTBOX_ACTOR,
                    via=(S.MINED,) if confirmed else (),
                    update_fields=["tx_hash", "block_number", "gas_used", "confirmed_at", "error",
                                   "updated_at"],
                )  # fmt: skip
            counts["mined"] += len(ok)
        for row, receipt in reverted:
            outbox._mined(row, receipt)
            counts["failed"] += 1
        if len(ok) + len(reverted) == len(open_rows):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        wait = min(wait * 2, POLL_MAX_WAIT)
