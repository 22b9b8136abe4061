"""Chain services: the writers other apps call (submit an intent, retry one, member addresses)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.selectors import audit_chain_head, audit_chain_targets_after, audit_row_at_hash
from apps.audit.services import audit_chain_seal, audit_log_write
from apps.chain.client import (
    custodial_address,
    custody_link_signature,
    custody_registration_signature,
    network_name,
)
from apps.chain.intents import PayloadError, validate_payload
from apps.chain.lock_objects import chain_intent_lock, open_chain_alerts_lock
from apps.chain.models import ChainIntent
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor

if TYPE_CHECKING:
    from apps.accounts.models import Member

logger = logging.getLogger(__name__)


def member_chain_address(member: Member) -> str:
    """The member's chain address: the linked wallet (Sign-In with Ethereum) if any, else a
    deterministic custodial address derived from CHAIN_CUSTODY_SECRET and the member id (no key is
    stored; see apps.chain.client.custodial_address).

    The first use of a custodial address queues its on-chain registration (one `custody_register`
    intent, signed by the account's own key): EnergyToken's custodian moves only registered
    custodial accounts, never a wallet the cooperative does not hold. For a member with a linked
    wallet, the first use also links their custodial account to that wallet on chain
    (`custody_link`), so settlements may deliver to the wallet and the member may withdraw what
    the cooperative held for them; moving tokens *out* of the wallet needs the owner's own
    signature (an approval or a signed transfer authorisation).
    """
    address = custodial_address(member.pk)
    custody_account_register(member_id=member.pk, address=address)
    wallet = getattr(member, "wallet_address", "")
    if wallet:
        custody_wallet_link(member_id=member.pk, address=address, wallet=wallet)
        return wallet
    return address


@transaction.atomic
def custody_account_register(*, member_id: int, address: str) -> ChainIntent:
    """Queue the on-chain registration of a member's custodial account (idempotent)."""
    key = f"custody_register:{network_name()}:{address.lower()}"
    existing = ChainIntent.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    return chain_intent_submit(
        intent="custody_register",
        payload={"account": address, "signature": custody_registration_signature(member_id)},
        idempotency_key=key,
    )


@transaction.atomic
def custody_wallet_link(*, member_id: int, address: str, wallet: str) -> ChainIntent:
    """Queue the on-chain link of a member's custodial account to their wallet (idempotent)."""
    key = f"custody_link:{network_name()}:{address.lower()}:{wallet.lower()}"
    existing = ChainIntent.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    return chain_intent_submit(
        intent="custody_link",
        payload={
            "account": address,
            "wallet": wallet,
            "signature": custody_link_signature(member_id, wallet),
        },
        idempotency_key=key,
    )


# One queued sweep handles every row that is due when it runs, so a burst of submits (an hour's
# certificates, the demo's thousands) queues one sweep, not one per row: the key is set when a
# sweep is queued and cleared when it starts (apps.chain.tasks), so a row committed after that
# queues the next one. The expiry only matters when no worker takes the task; the periodic sweep
# picks every row up anyway.
OUTBOX_SWEEP_QUEUED_KEY = "chain:outbox-sweep-queued"
OUTBOX_SWEEP_QUEUED_SECONDS = 60


def _enqueue(intent_id: int) -> None:
    if not settings.CHAIN_OUTBOX_ENQUEUE:
        return
    from apps.chain.tasks import chain_intent_process_task

    try:
        if not cache.add(OUTBOX_SWEEP_QUEUED_KEY, intent_id, OUTBOX_SWEEP_QUEUED_SECONDS):
            return  # a queued sweep has not started yet: it will see this row
    except Exception:  # noqa: BLE001 - without the cache, queue the sweep (a spare one is harmless)
        logger.warning("outbox sweep guard unavailable; queueing a sweep for intent %s", intent_id)
    try:
        chain_intent_process_task.delay(intent_id)
    except Exception:  # noqa: BLE001 - the periodic sweep picks the row up; the row is the truth
        logger.warning("could not enqueue chain intent %s; the sweep will pick it up", intent_id)


@transaction.atomic
def chain_intent_submit(
    *, intent: str, payload: dict[str, Any], idempotency_key: str, actor: Actor = None
) -> ChainIntent:
    """Add an on-chain action to the outbox (idempotent on `idempotency_key`).

    Call it inside your own write transaction: the row commits with your state change, and the
    worker is enqueued on commit. The same key again returns the existing row (a different payload
    under the same key raises ApplicationError). Raises ApplicationError on an invalid payload.
    """
    if not idempotency_key or len(idempotency_key) > 200:
        raise ApplicationError("idempotency_key must be 1-200 characters.")
    try:
        validate_payload(intent, payload)
    except PayloadError as exc:
        raise ApplicationError(f"Invalid {intent} payload: {exc}", {"intent": intent}) from exc
    existing = ChainIntent.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None and intent == "settlement_apply" and not payload.get("approval"):
        payload = {**payload, "approval": _settlement_approval(payload)}
    if existing is None:
        try:
            with transaction.atomic():
                row = ChainIntent.objects.create(
                    intent=intent,
                    payload=payload,
                    idempotency_key=idempotency_key,
                    network=network_name(),
                )
        except IntegrityError:  # a concurrent submit with the same key won
            existing = ChainIntent.objects.get(idempotency_key=idempotency_key)
        else:
            audit_log_write(
                event=AuditEvent.CHAIN_INTENT_SUBMITTED,
                actor=actor,
                target=row,
                details={"intent": intent, "idempotency_key": idempotency_key},
            )
            transaction.on_commit(lambda: _enqueue(row.pk))
            return row
    if existing.intent != intent or _without_approval(existing.payload) != _without_approval(
        payload
    ):
        raise ApplicationError(
            "This idempotency key was already used for a different intent or payload.",
            {"idempotency_key": idempotency_key, "existing_id": existing.pk},
        )
    return existing


def _settlement_approval(payload: dict[str, Any]) -> str:
    """The settlement-approval duty's co-signature of a batch (checked by EnergyTrading.settle),
    taken when the batch enters the outbox: the worker that sends it does not need that key."""
    from apps.chain.approvals import settlement_approve

    try:
        return settlement_approve(payload=payload)
    except ApplicationError as exc:
        raise ApplicationError(
            f"The settlement batch could not be approved: {exc.message}",
            {"intent": "settlement_apply"},
        ) from exc


def _without_approval(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "approval"}


@transaction.atomic
def chain_intent_retry(*, intent_id: int, actor: Actor = None) -> ChainIntent:
    """Put a failed intent back in the queue (staff action). A failed intent never has a
    transaction pending on chain, so retrying cannot send it twice."""
    row = chain_intent_lock(intent_id)
    if row.status != ChainIntent.Status.FAILED:
        # Pending/signed/sent rows are retried by the worker itself; just wake it up.
        row.next_attempt_at = None
        row.save(update_fields=["next_attempt_at", "updated_at"])
    else:
        row.next_attempt_at = None
        row.retryable = True
        row.transition_to(
            ChainIntent.Status.PENDING,
            actor=actor,
            update_fields=["next_attempt_at", "retryable", "updated_at"],
        )
    audit_log_write(event=AuditEvent.CHAIN_INTENT_RETRIED, actor=actor, target=row, details={})
    transaction.on_commit(lambda: _enqueue(row.pk))
    return row


@transaction.atomic
def chain_alerts_acknowledge(*, alert_ids: list[int], actor: Actor = None) -> int:
    """Staff acknowledge alerts on unexplained chain events; returns how many were open."""
    from django.utils import timezone

    alerts = open_chain_alerts_lock(alert_ids)
    now = timezone.now()
    for alert in alerts:
        alert.acknowledged_at = now
        alert.save(update_fields=["acknowledged_at"])
        audit_log_write(
            event=AuditEvent.CHAIN_ALERT_ACKNOWLEDGED,
            actor=actor,
            target=alert,
            details={
                "message": alert.message,
                "tx_hash": alert.event.tx_hash if alert.event is not None else "",
            },
        )
    return len(alerts)


def chain_intent_is_confirmed(*, idempotency_key: str) -> bool:
    return ChainIntent.objects.filter(
        idempotency_key=idempotency_key, status=ChainIntent.Status.CONFIRMED
    ).exists()


@transaction.atomic
def chain_contracts_deploy(*, force: bool = False, actor: Actor = None) -> dict[str, str]:
    """Deploy (or keep) the contracts on the configured network; returns {name: address}.

    Idempotent: when every contract is recorded for this network, has code on chain and was built
    from the current artifacts, nothing is sent. `force` redeploys all of them. Recorded contracts
    built from older artifacts are an upgrade: on the local chain they are replaced by a new
    deployment; elsewhere this refuses (ChainConfigError) until staff run the documented
    migration (docs/chain.md, "Upgrading a deployment") and redeploy with `force`.
    """
    from apps.chain import client, keys
    from apps.chain.deploy import DeployConfig, bytecode_sha256, deploy_all, fund_local_accounts
    from apps.chain.models import ContractDeployment

    client.check_chain_id()
    cfg = client.network_config()
    w3 = client.web3()
    rows = {r.name: r for r in ContractDeployment.objects.filter(network=cfg.name)}
    complete = set(rows) >= set(client.CONTRACT_NAMES) and all(
        len(w3.eth.get_code(rows[n].address)) > 0  # type: ignore[arg-type]  # a stored checksum address
        for n in client.CONTRACT_NAMES
    )
    outdated = sorted(
        n
        for n in client.CONTRACT_NAMES
        if n in rows and rows[n].bytecode_sha256 != bytecode_sha256(n)
    )
    if complete and not force and not outdated:
        return {n: rows[n].address for n in client.CONTRACT_NAMES}
    if complete and outdated and not force and not cfg.is_local:
        raise client.ChainConfigError(
            f"The contracts deployed on {cfg.name} ({', '.join(outdated)}) were built from older "
            "sources. Upgrading is a new deployment plus a state migration (docs/chain.md, "
            "'Upgrading a deployment'): pause the old contracts through the multisig, then run "
            "chain_deploy --force.",
            {"outdated": outdated},
        )
    deployer = client.operator_account()
    signers, threshold = client.multisig_signers()
    duties = keys.duty_addresses()
    guardians = keys.guardian_addresses()
    if len(set(duties.values())) != len(duties) or set(duties.values()) & {
        deployer.address,
        *signers,
    }:
        raise client.ChainConfigError(
            "Every duty needs its own key, distinct from the deployer and the multisig signers.",
            {"duties": duties},
        )
    if cfg.is_local:
        fund_local_accounts(w3, deployer, [*duties.values(), *guardians])
    config = DeployConfig(
        duties=duties,
        signers=signers,
        threshold=threshold,
        guardians=guardians,
        cap_period_seconds=int(settings.CHAIN_CAP_PERIOD_SECONDS),
        mint_cap_wh=int(settings.CHAIN_MINT_CAP_WH),
        award_cap=int(settings.CHAIN_AWARD_CAP),
        redeem_cap=int(settings.CHAIN_REDEEM_CAP),
        meter_key_delay=int(settings.CHAIN_METER_KEY_DELAY_SECONDS),
    )
    deployed = deploy_all(w3, deployer, config)
    for d in deployed.values():
        ContractDeployment.objects.update_or_create(
            network=cfg.name,
            name=d.name,
            defaults={
                "chain_id": cfg.chain_id,
                "address": d.address,
                "tx_hash": d.tx_hash,
                "block_number": d.block_number,
                "bytecode_sha256": d.bytecode_sha256,
            },
        )
    addresses = {n: deployed[n].address for n in client.CONTRACT_NAMES}
    audit_log_write(
        event=AuditEvent.CONTRACTS_DEPLOYED,
        actor=actor,
        target_type="chain.contractdeployment",
        target_id=cfg.name,
        details={
            "addresses": addresses,
            "signers": signers,
            "threshold": threshold,
            "duties": duties,
            "guardians": guardians,
            "replaced_outdated": outdated,
        },
    )
    return addresses


def document_anchor_key(*, kind: str, digest: str) -> str:
    """The outbox idempotency key of a document anchor: one intent per (network, kind, digest)."""
    return f"document_anchor:{network_name()}:{kind}:{digest.lower()}"


@transaction.atomic
def document_anchor_submit(*, kind: str, digest: str, actor: Actor = None) -> ChainIntent:
    """Queue the on-chain anchor of a document digest (MeterOracle.anchorDocument, signed by the
    `documents` duty key). Idempotent: the same (kind, digest) returns the existing intent, so
    exporting the same report twice anchors it once. `digest` is a 0x-prefixed SHA-256."""
    return chain_intent_submit(
        intent="document_anchor",
        payload={"kind": kind, "digest": digest.lower()},
        idempotency_key=document_anchor_key(kind=kind, digest=digest),
        actor=actor,
    )


AUDIT_HEAD_KIND = "audit_head"


def audit_head_anchor() -> ChainIntent | None:
    """Seal the audit log's pending rows and queue the chain head's hash for anchoring (kind
    "audit_head"); None when the log is empty. The same head is anchored once, and a head that
    moved only by the audit rows of our last head anchor itself is not anchored again (else every
    period would anchor the row its previous anchor wrote)."""
    audit_chain_seal(wait=True)
    seq, head_hash = audit_chain_head()
    if seq == 0:
        return None
    last = (
        ChainIntent.objects.filter(intent="document_anchor", payload__kind=AUDIT_HEAD_KIND)
        .order_by("-pk")
        .first()
    )
    if last is not None:
        at = audit_row_at_hash(row_hash=str(last.payload["digest"]).removeprefix("0x"))
        if at is not None:
            since = audit_chain_targets_after(chain_seq=at[0])
            if all(t == ("chain.chainintent", str(last.pk)) for t in since):
                return last
    return document_anchor_submit(kind=AUDIT_HEAD_KIND, digest="0x" + head_hash, actor="audit")


# --- upgrading a deployment (new deployment + state migration) -----------------------------------

# Settlement ids of balance migrations: far above any settlement run id.
MIGRATION_SETTLEMENT_BASE = 1 << 255


@transaction.atomic
def chain_contracts_upgrade(*, actor: Actor = None) -> dict[str, Any]:
    """Replace the deployed contracts with a new deployment and migrate their state.

    Refused unless the multisig has paused the old contracts (nothing may change on them while
    their state is copied). Then: the old addresses are kept (`RetiredContract`; their views keep
    answering, so anchors, roots and certificates verify at the address that holds them), the new
    set is deployed and wired like `chain_contracts_deploy`, and the outbox gets, for the new
    EnergyTrading, every settlement root applied on the old one (same id and root, no money) and
    one balance migration carrying each account's old `balanceOf` (zero-sum, like every
    settlement; co-signed by the settlement-approval duty). Meter keys are registered again by the
    next anchoring run. Returns {"addresses", "retired", "roots", "balances"}.
    """
    from apps.chain import client
    from apps.chain.merkle import keccak256
    from apps.chain.models import ContractDeployment, RetiredContract

    client.check_chain_id()
    cfg = client.network_config()
    old = {r.name: r for r in ContractDeployment.objects.filter(network=cfg.name)}
    missing = set(client.CONTRACT_NAMES) - set(old)
    if missing:
        raise client.ChainConfigError(
            f"Nothing to upgrade on {cfg.name}: {', '.join(sorted(missing))} not deployed."
        )
    w3 = client.web3()
    running = [
        n
        for n in client.CONTRACT_NAMES
        if n != "StaffMultisig"
        and not client.contract(n, address=old[n].address, w3=w3).functions.paused().call()
    ]
    if running:
        raise client.ChainConfigError(
            f"Pause {', '.join(running)} through the multisig before upgrading "
            "(`manage.py chain_multisig pause CONTRACT`).",
            {"running": running},
        )
    old_trading = client.contract("EnergyTrading", address=old["EnergyTrading"].address, w3=w3)
    applied = list(
        ChainIntent.objects.filter(
            network=cfg.name,
            intent="settlement_apply",
            status__in=(ChainIntent.Status.MINED, ChainIntent.Status.CONFIRMED),
            contract_address__iexact=old_trading.address,
        ).order_by("pk")
    )
    members = sorted({m for row in applied for m in row.payload["members"]}, key=str.lower)
    balances = {m: int(old_trading.functions.balanceOf(m).call()) for m in members}
    balances = {m: v for m, v in balances.items() if v}
    if sum(balances.values()) != 0:
        raise client.ChainConfigError(
            "The old EnergyTrading balances of the settled members do not sum to zero: "
            "an account is missing from the settlement records; not upgrading.",
            {"sum": sum(balances.values())},
        )
    retired = []
    for deployment in old.values():
        retired.append(deployment.address)
        RetiredContract.objects.get_or_create(
            network=cfg.name,
            address=deployment.address,
            defaults={"chain_id": deployment.chain_id, "name": deployment.name,
                      "bytecode_sha256": deployment.bytecode_sha256,
                      "deployed_block": deployment.block_number, "replaced_by": ""},
        )  # fmt: skip
    addresses = chain_contracts_deploy(force=True, actor=actor)
    for name, deployment in old.items():
        RetiredContract.objects.filter(network=cfg.name, address=deployment.address).update(
            replaced_by=addresses[name]
        )
    new_trading = addresses["EnergyTrading"]
    roots = 0
    for row in applied:
        if row.payload["settlement_id"] >= MIGRATION_SETTLEMENT_BASE:
            continue  # an earlier migration's balances are in the balances below
        chain_intent_submit(
            intent="settlement_apply",
            payload={"settlement_id": row.payload["settlement_id"],
                     "trades_root": row.payload["trades_root"], "members": [],
                     "money_deltas_minor": []},
            idempotency_key=f"upgrade:{new_trading}:root:{row.payload['settlement_id']}",
            actor=actor,
        )  # fmt: skip
        roots += 1
    if balances:
        number = RetiredContract.objects.filter(network=cfg.name, name="EnergyTrading").count()
        chain_intent_submit(
            intent="settlement_apply",
            payload={
                "settlement_id": MIGRATION_SETTLEMENT_BASE + number,
                "trades_root": "0x" + keccak256(b"balances of " + bytes.fromhex(
                    old_trading.address[2:])).hex(),
                "members": list(balances),
                "money_deltas_minor": list(balances.values()),
            },
            idempotency_key=f"upgrade:{new_trading}:balances",
            actor=actor,
        )  # fmt: skip
    audit_log_write(
        event=AuditEvent.CONTRACTS_UPGRADED,
        actor=actor,
        target_type="chain.contractdeployment",
        target_id=cfg.name,
        details={"retired": {n: r.address for n, r in old.items()}, "addresses": addresses,
                 "roots_carried": roots, "balances_migrated": len(balances)},
    )  # fmt: skip
    return {"addresses": addresses, "retired": retired, "roots": roots, "balances": balances}
