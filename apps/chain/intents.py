"""Catalogue of on-chain intents: what other apps may ask the chain to do (pure; no Django import).

An intent is a name plus a JSON payload. Each entry says which contract and function carry it out
and how the payload maps to the call's arguments. Payloads are validated here, when they are
submitted (``chain_intent_submit``), so a malformed request fails in the caller's transaction and
never reaches the outbox.

Payload conventions (JSON-safe):
- addresses: ``0x``-prefixed hex strings (any case; checksummed on the way to the chain);
- ``bytes32`` values (roots, hashes): ``0x``-prefixed 64-hex-digit strings;
- integers: JSON integers (Wh, integer minor currency units, Unix seconds UTC, ids).

Token ids of energy certificates: ``token_id(asset_id, hour_start)`` = ``asset_id << 64 |
hour_start`` (one producing asset, one hour; see docs/domain.md, "Granular certificates").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address

from apps.chain.merkle import keccak256

__all__ = [
    "APPROVAL_DUTY",
    "DUTIES",
    "KEY_DUTIES",
    "INTENTS",
    "IntentSpec",
    "PayloadError",
    "intents_of_duty",
    "document_kind",
    "meter_key",
    "token_id",
    "validate_payload",
]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
UINT256 = 2**256 - 1
INT256 = 2**255 - 1


# Duties: each is one contract role held by its own key (apps/chain/keys.py); the outbox signs an
# intent with the key of its duty, so a stolen key exposes one duty only.
DUTIES = ("mint", "certificates", "settlement", "anchoring", "rewards", "grid", "documents")
# A key that sends nothing but co-signs: EnergyTrading.settle needs its EIP-712 approval of each
# batch (APPROVER_ROLE), so the settlement key alone cannot rewrite balances.
APPROVAL_DUTY = "settlement_approval"
KEY_DUTIES = (*DUTIES, APPROVAL_DUTY)


class PayloadError(ValueError):
    """The payload does not match the intent's schema."""


def token_id(asset_id: int, hour_start: int) -> int:
    """Energy certificate token id (EnergyToken.tokenIdFor): asset id in the high bits, hour start
    (Unix seconds, UTC, a multiple of 3600) in the low 64 bits."""
    if hour_start % 3600:
        raise ValueError("hour_start must be a whole UTC hour")
    if not 0 <= asset_id < 2**192 or not 0 <= hour_start < 2**64:
        raise ValueError("asset id or hour out of range")
    return (asset_id << 64) | hour_start


def meter_key(serial: str) -> bytes:
    """MeterOracle's key for a meter: keccak256(bytes(serial))."""
    return keccak256(serial.encode("utf-8"))


_DOCUMENT_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def document_kind(kind: str) -> bytes:
    """MeterOracle's bytes32 for a document kind: the ASCII name, right-padded with zero bytes
    (so the chain shows it readably). Names are 1-32 of ``a-z 0-9 _``, starting with a letter."""
    if not isinstance(kind, str) or not _DOCUMENT_KIND.match(kind):
        raise PayloadError(f"not a document kind (1-32 of a-z, 0-9, _): {kind!r}")
    return kind.encode("ascii").ljust(32, b"\0")


# --- field kinds ---------------------------------------------------------------------------


def _address(value: Any) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise PayloadError(f"not an address: {value!r}")
    return to_checksum_address(value)


def _bytes32(value: Any) -> str:
    if not isinstance(value, str) or not _BYTES32.match(value):
        raise PayloadError(f"not a 0x-prefixed 32-byte hex value: {value!r}")
    return value.lower()


def _uint(limit: int = UINT256) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise PayloadError(f"not an unsigned integer up to {limit}: {value!r}")
        return value

    return check


def _int256(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -INT256 <= value <= INT256:
        raise PayloadError(f"not a signed integer: {value!r}")
    return value


def _list(kind: Callable[[Any], Any]) -> Callable[[Any], list]:
    def check(value: Any) -> list:
        if not isinstance(value, list):
            raise PayloadError(f"not a list: {value!r}")
        return [kind(v) for v in value]

    return check


def _serial(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value.encode("utf-8")) <= 64:
        raise PayloadError(f"not a meter serial: {value!r}")
    return value


# --- payload schemas -----------------------------------------------------------------------
# Each dataclass lists the payload keys; `kinds` says how each key is checked.


@dataclass(frozen=True)
class MeterRegister:
    serial: str
    device_address: str
    kinds = {"serial": _serial, "device_address": _address}

    def args(self) -> tuple:
        return (meter_key(self.serial), self.device_address)


@dataclass(frozen=True)
class MeterAnchor:
    interval_start: int  # Unix seconds UTC
    version: int  # 1 for the first anchor of an interval; late data gets a new version
    root: str
    leaf_count: int
    kinds = {
        "interval_start": _uint(2**64 - 1),
        "version": _uint(2**32 - 1),
        "root": _bytes32,
        "leaf_count": _uint(2**32 - 1),
    }

    def args(self) -> tuple:
        return (self.interval_start, self.version, bytes.fromhex(self.root[2:]), self.leaf_count)


def _credit_move(value: Any) -> tuple[str, str, int, int]:
    if not isinstance(value, dict) or set(value) != {"from", "to", "token_id", "amount_wh"}:
        raise PayloadError(f"a credit move is {{from, to, token_id, amount_wh}}: {value!r}")
    amount = _uint()(value["amount_wh"])
    if amount == 0:
        raise PayloadError("a credit move needs a positive amount")
    return (_address(value["from"]), _address(value["to"]), _uint()(value["token_id"]), amount)


def _signature(value: Any) -> str:
    if not isinstance(value, str) or not _SIGNATURE.match(value):
        raise PayloadError(f"not a 65-byte 0x-prefixed signature: {value!r}")
    return value.lower()


@dataclass(frozen=True)
class SettlementApply:
    settlement_id: int
    trades_root: str  # Merkle root over merkle.trade_leaf(...) of every trade, in trade-id order
    members: list[str]  # every account whose money balance changes (incl. the cooperative's)
    money_deltas_minor: list[int]  # netted, integer minor units; must sum to zero
    # Energy credits moved seller → buyer: [{"from", "to", "token_id", "amount_wh"}, ...]
    credit_moves: list[tuple[str, str, int, int]] = field(default_factory=list)
    # EIP-712 `Settlement` signature of the settlement-approval key (added by chain_intent_submit)
    approval: str = ""
    kinds = {
        "settlement_id": _uint(),
        "trades_root": _bytes32,
        "members": _list(_address),
        "money_deltas_minor": _list(_int256),
        "credit_moves": _list(_credit_move),
        "approval": _signature,
    }

    def check(self) -> None:
        if len(self.members) != len(self.money_deltas_minor):
            raise PayloadError("members and money_deltas_minor differ in length")
        if sum(self.money_deltas_minor) != 0:
            raise PayloadError("netted money deltas must sum to zero (budget balance)")
        if len({m.lower() for m in self.members}) != len(self.members):
            raise PayloadError("a member appears twice; net the deltas first")

    def args(self) -> tuple:
        return (
            self.settlement_id,
            bytes.fromhex(self.trades_root[2:]),
            self.members,
            self.money_deltas_minor,
            list(self.credit_moves),
            bytes.fromhex(self.approval[2:]) if self.approval else b"",
        )


@dataclass(frozen=True)
class CertificateMint:
    to: str
    token_id: int
    amount_wh: int
    certificate_hash: str  # keccak256 of the certificate's off-chain record (EnergyTag fields)
    kinds = {
        "to": _address,
        "token_id": _uint(),
        "amount_wh": _uint(),
        "certificate_hash": _bytes32,
    }

    def args(self) -> tuple:
        return (self.to, self.token_id, self.amount_wh, bytes.fromhex(self.certificate_hash[2:]))


@dataclass(frozen=True)
class CertificateTransfer:
    from_address: str
    to: str
    token_id: int
    amount_wh: int
    kinds = {"from_address": _address, "to": _address, "token_id": _uint(), "amount_wh": _uint()}

    def args(self) -> tuple:
        return (self.from_address, self.to, self.token_id, self.amount_wh)


@dataclass(frozen=True)
class CustodyRegister:
    account: str  # a custodial member address
    signature: str  # the account's own EIP-191 signature of EnergyToken.custodyDigest(account)
    kinds = {"account": _address, "signature": _signature}

    def args(self) -> tuple:
        return (self.account, bytes.fromhex(self.signature[2:]))


@dataclass(frozen=True)
class CustodyLink:
    account: str  # the member's registered custodial account
    wallet: str  # the member's own wallet (Sign-In with Ethereum)
    signature: str  # the account's own EIP-191 signature of EnergyToken.linkDigest(account, wallet)
    kinds = {"account": _address, "wallet": _address, "signature": _signature}

    def args(self) -> tuple:
        return (self.account, self.wallet, bytes.fromhex(self.signature[2:]))


@dataclass(frozen=True)
class CertificateClaim:
    holder: str
    token_id: int
    amount_wh: int
    beneficiary_hash: str  # keccak256 of the beneficiary record (no personal data on chain)
    kinds = {
        "holder": _address,
        "token_id": _uint(),
        "amount_wh": _uint(),
        "beneficiary_hash": _bytes32,
    }

    def args(self) -> tuple:
        return (
            self.holder,
            self.token_id,
            self.amount_wh,
            bytes.fromhex(self.beneficiary_hash[2:]),
        )


@dataclass(frozen=True)
class CertificateCancel:
    holder: str
    token_id: int
    amount_wh: int
    reason_hash: str
    kinds = {"holder": _address, "token_id": _uint(), "amount_wh": _uint(), "reason_hash": _bytes32}

    def args(self) -> tuple:
        return (self.holder, self.token_id, self.amount_wh, bytes.fromhex(self.reason_hash[2:]))


@dataclass(frozen=True)
class RewardMint:
    award_id: int  # once only per id (replay reverts)
    member: str
    rule_id: int
    basis_wh: int  # the energy the rule pays for (local renewable use, DR delivery)
    kinds = {"award_id": _uint(), "member": _address, "rule_id": _uint(), "basis_wh": _uint()}

    def args(self) -> tuple:
        return (self.award_id, self.member, self.rule_id, self.basis_wh)


@dataclass(frozen=True)
class RewardClaim:
    member: str
    kinds = {"member": _address}

    def args(self) -> tuple:
        return (self.member,)


@dataclass(frozen=True)
class RewardRedeem:
    redemption_id: int  # once only per id (replay reverts)
    member: str
    amount: int  # reward-token base units burned from the member's accrued rewards
    kinds = {"redemption_id": _uint(), "member": _address, "amount": _uint()}

    def args(self) -> tuple:
        return (self.redemption_id, self.member, self.amount)


@dataclass(frozen=True)
class DrEventRecord:
    event_id: int
    modification: int  # OpenADR modification number; must grow on re-record
    start: int  # Unix seconds UTC
    end: int
    target_w: int
    signal_hash: str
    kinds = {
        "event_id": _uint(),
        "modification": _uint(2**32 - 1),
        "start": _uint(2**64 - 1),
        "end": _uint(2**64 - 1),
        "target_w": _uint(),
        "signal_hash": _bytes32,
    }

    def check(self) -> None:
        if self.end <= self.start:
            raise PayloadError("event window must end after it starts")

    def args(self) -> tuple:
        return (
            self.event_id,
            self.modification,
            self.start,
            self.end,
            self.target_w,
            bytes.fromhex(self.signal_hash[2:]),
        )


@dataclass(frozen=True)
class DrCommitmentRecord:
    event_id: int
    member: str
    committed_w: int
    kinds = {"event_id": _uint(), "member": _address, "committed_w": _uint()}

    def args(self) -> tuple:
        return (self.event_id, self.member, self.committed_w)


@dataclass(frozen=True)
class DrPerformanceRecord:
    event_id: int
    member: str
    baseline_wh: int
    actual_wh: int
    delivered_wh: int
    kinds = {
        "event_id": _uint(),
        "member": _address,
        "baseline_wh": _uint(),
        "actual_wh": _uint(),
        "delivered_wh": _uint(),
    }

    def args(self) -> tuple:
        return (self.event_id, self.member, self.baseline_wh, self.actual_wh, self.delivered_wh)


@dataclass(frozen=True)
class StabilityRecord:
    interval_start: int
    score_bp: int  # 0..10000 basis points
    data_hash: str
    kinds = {"interval_start": _uint(2**64 - 1), "score_bp": _uint(10_000), "data_hash": _bytes32}

    def args(self) -> tuple:
        return (self.interval_start, self.score_bp, bytes.fromhex(self.data_hash[2:]))


def _document_kind(value: Any) -> str:
    document_kind(value)
    return value


@dataclass(frozen=True)
class DocumentAnchor:
    kind: str  # e.g. "compliance_report", "audit_head" (document_kind)
    digest: str  # the document's SHA-256 as bytes32 (a report's content hash, an audit-log head)
    kinds = {"kind": _document_kind, "digest": _bytes32}

    def check(self) -> None:
        if int(self.digest, 16) == 0:
            raise PayloadError("a zero digest anchors nothing")

    def args(self) -> tuple:
        return (document_kind(self.kind), bytes.fromhex(self.digest[2:]))


@dataclass(frozen=True)
class IntentSpec:
    name: str
    contract: str  # contract name in contracts/build/ and ContractDeployment
    function: str
    payload_type: type
    description: str
    duty: str  # which key signs it (one of DUTIES)


INTENTS: dict[str, IntentSpec] = {
    spec.name: spec
    for spec in (
        IntentSpec(
            "meter_register",
            "MeterOracle",
            "registerMeter",
            MeterRegister,
            "Propose a meter's first device key (time-locked; rotation is the multisig's).",
            "anchoring",
        ),
        IntentSpec(
            "meter_anchor",
            "MeterOracle",
            "anchorBatch",
            MeterAnchor,
            "Anchor the Merkle root of an interval's validated readings.",
            "anchoring",
        ),
        IntentSpec(
            "settlement_apply",
            "EnergyTrading",
            "settle",
            SettlementApply,
            "Apply a settlement batch: trades root, netted money, credit moves; once per id.",
            "settlement",
        ),
        IntentSpec(
            "certificate_mint",
            "EnergyToken",
            "mint",
            CertificateMint,
            "Issue an energy certificate (ERC-1155, 1 unit = 1 Wh), within the mint cap.",
            "mint",
        ),
        IntentSpec(
            "certificate_transfer",
            "EnergyToken",
            "custodianTransfer",
            CertificateTransfer,
            "Move certificates between custodial holders.",
            "certificates",
        ),
        IntentSpec(
            "custody_register",
            "EnergyToken",
            "registerCustodial",
            CustodyRegister,
            "Register a custodial member account (signed by the account's own key).",
            "certificates",
        ),
        IntentSpec(
            "custody_link",
            "EnergyToken",
            "linkWallet",
            CustodyLink,
            "Link a member's custodial account to their own wallet (signed by the account's key).",
            "certificates",
        ),
        IntentSpec(
            "certificate_claim",
            "EnergyToken",
            "claimFor",
            CertificateClaim,
            "Claim (retire) certificates for a beneficiary: burns them.",
            "certificates",
        ),
        IntentSpec(
            "certificate_cancel",
            "EnergyToken",
            "cancel",
            CertificateCancel,
            "Cancel certificates (issuer correction): burns them.",
            "mint",
        ),
        IntentSpec(
            "reward_mint",
            "RenewableIncentive",
            "award",
            RewardMint,
            "Accrue a reward under a rule (once per award id), within the award cap.",
            "rewards",
        ),
        IntentSpec(
            "reward_claim",
            "RenewableIncentive",
            "claimFor",
            RewardClaim,
            "Pay a member's accrued rewards out as reward tokens.",
            "rewards",
        ),
        IntentSpec(
            "reward_redeem",
            "RenewableIncentive",
            "redeemFor",
            RewardRedeem,
            "Burn accrued rewards a member redeemed for an invoice credit (once per id, capped).",
            "rewards",
        ),
        IntentSpec(
            "dr_event_record",
            "GridBalancer",
            "recordEvent",
            DrEventRecord,
            "Record a demand-response event (or a newer modification of it).",
            "grid",
        ),
        IntentSpec(
            "dr_commitment_record",
            "GridBalancer",
            "recordCommitment",
            DrCommitmentRecord,
            "Record a member's demand-response commitment.",
            "grid",
        ),
        IntentSpec(
            "dr_performance_record",
            "GridBalancer",
            "recordPerformance",
            DrPerformanceRecord,
            "Record a member's measured demand-response performance.",
            "grid",
        ),
        IntentSpec(
            "stability_record",
            "GridBalancer",
            "recordStability",
            StabilityRecord,
            "Record an interval's grid stability score.",
            "grid",
        ),
        IntentSpec(
            "document_anchor",
            "MeterOracle",
            "anchorDocument",
            DocumentAnchor,
            "Anchor a document digest (a signed report's content hash, the audit-log head).",
            "documents",
        ),
    )
}


def intents_of_duty(duty: str) -> list[str]:
    """The intent names signed with `duty`'s key."""
    return [name for name, spec in INTENTS.items() if spec.duty == duty]


def validate_payload(intent: str, payload: dict[str, Any]) -> Any:
    """Return the typed payload object for `intent`, or raise PayloadError."""
    spec = INTENTS.get(intent)
    if spec is None:
        raise PayloadError(f"unknown intent {intent!r}; known: {', '.join(sorted(INTENTS))}")
    if not isinstance(payload, dict):
        raise PayloadError("payload must be an object")
    cls = spec.payload_type
    names = {f.name for f in dataclasses.fields(cls)}
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    unknown = set(payload) - names
    missing = required - set(payload)
    if unknown or missing:
        raise PayloadError(
            f"{intent}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}"
        )
    values = {k: cls.kinds[k](v) for k, v in payload.items()}
    obj = cls(**values)
    if hasattr(obj, "check"):
        obj.check()
    return obj


def call_for(intent: str, payload: dict[str, Any]) -> tuple[IntentSpec, tuple]:
    """(spec, positional arguments) of the contract call carrying out this intent."""
    obj = validate_payload(intent, payload)
    return INTENTS[intent], obj.args()
