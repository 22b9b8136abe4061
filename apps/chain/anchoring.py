"""Meter-data anchoring and per-reading verification.

Anchoring: the Merkle tree of one interval's current validated, device-signed readings (in meter
id order; leaf = ``merkle.reading_leaf(reading_digest(fields))``) is anchored through
MeterOracle.anchorBatch via the outbox. Only readings whose device signature verifies against the
fields as stored are included; a reading that fails, or whose (meter, version) was anchored before
with another leaf (changed in place), is left out with a staff alert (``ChainAlert``) and an audit
entry — never anchored. Each anchor is a full snapshot of the interval; a new version is anchored
only when a reading version not anchored before appears (a late arrival, a correction with
version + 1). The leaves are kept (MeterAnchor.leaves) so any reading's proof can be rebuilt.

Verification (``reading_verify``) checks the device signature against the stored fields (offline),
recomputes the leaf from the reading as stored *now* and compares it with every anchor of the same
reading version; with the chain reachable it also asks MeterOracle.verifyReading (device
signature against the registered key + Merkle proof against the on-chain root).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.chain import client, merkle
from apps.chain.models import AnchoredReading, ChainAlert, ChainIntent, MeterAnchor
from apps.chain.services import chain_intent_submit
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor

logger = logging.getLogger(__name__)

OK = "OK"
TAMPERED = "TAMPERED"
NOT_ANCHORED = "NOT_ANCHORED"


def _unix(dt: datetime) -> int:
    return int(dt.astimezone(UTC).timestamp())


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


@transaction.atomic
def meter_interval_anchor(
    *, interval_start: datetime, interval_seconds: int = 900, actor: Actor = None
) -> MeterAnchor | None:
    """Anchor one interval's validated readings; None when there is nothing (new) to anchor.

    Only readings whose device signature verifies against the fields as stored are anchored;
    a reading changed in place after an earlier anchor (same version, another leaf) is not either.
    Both are left out with a staff alert (`ChainAlert`) and an audit entry. A new version of the
    interval's anchor is made only when a reading version not anchored before is present (a late
    arrival, a correction with version + 1); otherwise nothing happens.
    """
    from apps.meters.selectors import interval_anchoring_selection

    if interval_start.tzinfo is None:
        raise ApplicationError("interval_start must be timezone-aware (UTC).")
    key = zlib.crc32(f"meter-anchor:{_unix(interval_start)}".encode()) - 2**31
    with connection.cursor() as cursor:  # one anchoring run per interval at a time
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    earlier, legacy = _anchored_leaves(interval_start)

    def anchored_as_is(r: Any) -> bool:  # its signature was checked when it was anchored
        return earlier.get((r.meter_id, r.version)) == _hex(merkle.reading_leaf(r.digest))

    selection = interval_anchoring_selection(interval_start=interval_start, checked=anchored_as_is)
    for refused in selection.refused:
        _reading_excluded(refused.reading, interval_start, refused.reason, actor=actor)
    readings, leaves, new = [], [], False
    for r in selection.signed:
        leaf = merkle.reading_leaf(r.digest)
        first = earlier.get((r.meter_id, r.version))
        if first is None and (r.meter_id, _hex(leaf)) in legacy:
            first = _hex(leaf)
        if first is not None and first != _hex(leaf):
            reason = (
                f"changed in place: version {r.version} was anchored with leaf {first}, "
                f"stored now as {_hex(leaf)}"
            )
            _reading_excluded(r, interval_start, reason, actor=actor)
            continue
        new = new or first is None
        readings.append(r)
        leaves.append(leaf)
    if not readings or not new:
        return None
    latest = MeterAnchor.objects.filter(interval_start=interval_start).order_by("-version").first()
    version = latest.version + 1 if latest else 1
    _meters_register(readings, actor=actor)
    tree = merkle.build(leaves)
    start = _unix(interval_start)
    intent = chain_intent_submit(
        intent="meter_anchor",
        payload={
            "interval_start": start,
            "version": version,
            "root": _hex(tree.root),
            "leaf_count": len(leaves),
        },
        idempotency_key=f"meter_anchor:{start}:v{version}",
        actor=actor,
    )
    anchor = MeterAnchor.objects.create(
        interval_start=interval_start,
        interval_seconds=interval_seconds,
        version=version,
        root=_hex(tree.root),
        leaf_count=len(leaves),
        leaves=b"".join(leaves),
        intent=intent,
    )
    AnchoredReading.objects.bulk_create(
        [
            AnchoredReading(
                anchor=anchor,
                meter_id=r.meter_id,
                interval_start=interval_start,
                index=i,
                leaf=_hex(leaf),
                reading_version=r.version,
            )
            for i, (r, leaf) in enumerate(zip(readings, leaves, strict=True))
        ],
        batch_size=2000,
    )
    audit_log_write(
        event=AuditEvent.METER_INTERVAL_ANCHORED,
        actor=actor,
        target=anchor,
        details={"interval_start": interval_start.isoformat(), "version": version,
                 "root": anchor.root, "leaves": len(leaves), "intent": intent.pk},
    )  # fmt: skip
    return anchor


def _anchored_leaves(
    interval_start: datetime,
) -> tuple[dict[tuple[int, int], str], set[tuple[int, str]]]:
    """{(meter id, reading version): leaf of its first anchor} for the interval, and the
    (meter id, leaf) pairs of entries anchored before versions were recorded (not comparable by
    version; a reading equal to one of them is not new)."""
    out: dict[tuple[int, int], str] = {}
    legacy: set[tuple[int, str]] = set()
    rows = (
        AnchoredReading.objects.filter(interval_start=interval_start)
        .order_by("anchor__version")
        .values_list("meter_id", "reading_version", "leaf")
    )
    for meter_id, version, leaf in rows:
        if version is None:
            legacy.add((meter_id, leaf))
        else:
            out.setdefault((meter_id, version), leaf)
    return out, legacy


def _reading_excluded(reading: Any, interval_start: datetime, reason: str, *, actor: Actor) -> None:
    """Raise (once per finding) a staff alert and an audit entry for a reading left out."""
    leaf = _hex(merkle.reading_leaf(reading.digest))
    key = f"reading:{reading.meter_id}:{_unix(interval_start)}:v{reading.version}:{leaf}"
    message = (
        f"Meter {reading.serial}, interval {interval_start.astimezone(UTC).isoformat()}, "
        f"version {reading.version} not anchored: {reason}"
    )[:300]
    alert, created = ChainAlert.objects.get_or_create(
        key=key, defaults={"network": client.network_name(), "message": message}
    )
    if not created:
        return
    logger.warning("%s", message)
    audit_log_write(
        event=AuditEvent.METER_READING_EXCLUDED,
        actor=actor,
        target_type="meters.reading",
        target_id=f"{reading.meter_id}:{_unix(interval_start)}:v{reading.version}",
        details={"meter": reading.serial, "interval_start": interval_start.isoformat(),
                 "version": reading.version, "reason": reason[:200], "alert": alert.pk},
    )  # fmt: skip


def _meters_register(readings: list, *, actor: Actor = None) -> int:
    """Make sure every device key in the batch is registered in MeterOracle (so the on-chain
    signature check of verifyReading knows it): one `meter_register` intent per (serial, key) and
    oracle — after an upgrade the new MeterOracle gets its registrations again."""
    try:
        oracle = client.deployed_address("MeterOracle")
    except client.ChainConfigError:
        oracle = ""
    prefix = f"meter_register:{oracle.lower()}:" if oracle else "meter_register:"
    wanted = {f"{prefix}{r.serial}:{r.address.lower()}": r for r in readings if r.address}
    if not wanted:
        return 0
    known = set(
        ChainIntent.objects.filter(idempotency_key__in=list(wanted)).values_list(
            "idempotency_key", flat=True
        )
    )
    for key in sorted(set(wanted) - known):
        r = wanted[key]
        chain_intent_submit(
            intent="meter_register",
            payload={"serial": r.serial, "device_address": r.address},
            idempotency_key=key,
            actor=actor,
        )
    return len(set(wanted) - known)


def meter_anchor_due_intervals(
    *, now: datetime, interval_seconds: int = 900, lookback: int = 8, grace_seconds: int = 300
) -> list[datetime]:
    """Interval starts to (re)anchor now: the last `lookback` closed intervals, each at least
    `grace_seconds` after its end so late messages of a normal ingest delay are in."""
    step = timedelta(seconds=interval_seconds)
    epoch = int(now.timestamp()) - grace_seconds
    last_closed_end = datetime.fromtimestamp(epoch - epoch % interval_seconds, tz=UTC)
    return [last_closed_end - step * (i + 1) for i in range(lookback)]


def meter_anchor_recent(*, now: datetime | None = None) -> list[int]:
    """Periodic job: anchor every recent closed interval that has new validated readings."""
    now = now or timezone.now()
    made = []
    for start in sorted(meter_anchor_due_intervals(now=now)):
        anchor = meter_interval_anchor(interval_start=start)
        if anchor is not None:
            made.append(anchor.pk)
    return made


# --- verification ------------------------------------------------------------------------------


@dataclass
class ReadingVerification:
    meter: str
    interval_start: str
    verdict: str
    stored: dict[str, Any] | None = None
    leaf: str | None = None
    anchored_leaf: str | None = None
    proof: list[str] = field(default_factory=list)
    anchored_root: str | None = None
    onchain_root: str | None = None
    anchor_version: int | None = None
    tx_hash: str | None = None
    block_number: int | None = None
    intent_status: str | None = None
    signature_valid_onchain: bool | None = None
    included_onchain: bool | None = None
    reasons: list[str] = field(default_factory=list)
    chain_note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reading_verify(*, serial: str, interval_start: datetime, check_chain: bool = True) -> Any:
    """Verify one stored reading: its device signature against the fields as stored (offline),
    its leaf against every anchor of its interval holding the same reading version, and, with the
    chain reachable, MeterOracle.verifyReading (registered key + Merkle proof, on-chain root).

    TAMPERED when the signature does not match the stored fields, when the leaf differs from the
    one in any earlier anchor of the same version (or from the latest anchor holding the meter),
    or when the chain says the signature or the inclusion does not hold.
    """
    from apps.meters.models import Meter
    from apps.meters.selectors import meter_interval_reading_checked

    meter = Meter.objects.filter(serial=serial).first()
    if meter is None:
        raise ApplicationError(f"Unknown meter {serial!r}.", {"meter": serial})
    result = ReadingVerification(
        meter=serial, interval_start=interval_start.astimezone(UTC).isoformat(), verdict=""
    )
    current, signature_problem = meter_interval_reading_checked(
        meter_id=meter.pk, interval_start=interval_start
    )
    if current is not None:
        result.stored = {
            "seq": current.seq,
            "interval_seconds": current.interval_seconds,
            "import_wh": current.import_wh,
            "export_wh": current.export_wh,
            "register_import_wh": current.register_import_wh,
            "register_export_wh": current.register_export_wh,
            "status": current.status,
            "version": current.version,
            "signature": _hex(current.signature),
        }
        result.leaf = _hex(merkle.reading_leaf(current.digest))
        if signature_problem:
            result.reasons.append(signature_problem)
    entries = list(
        AnchoredReading.objects.filter(meter=meter, interval_start=interval_start)
        .select_related("anchor", "anchor__intent")
        .order_by("anchor__version")
    )
    if current is not None:
        for earlier in entries:
            same_version = earlier.reading_version == current.version
            if same_version and earlier.leaf != result.leaf:
                result.reasons.append(
                    f"the stored reading differs from version {current.version} as anchored "
                    f"in anchor version {earlier.anchor.version}"
                )
                break
    if not entries:
        if result.reasons:
            result.verdict = TAMPERED
        else:
            result.verdict = NOT_ANCHORED
            result.reasons.append("no anchor contains this reading")
        return result
    entry = entries[-1]
    anchor = entry.anchor
    intent = anchor.intent
    result.anchored_leaf = entry.leaf
    result.anchored_root = anchor.root
    result.anchor_version = anchor.version
    result.tx_hash = intent.tx_hash or None
    result.block_number = intent.block_number
    result.intent_status = intent.status
    raw = bytes(anchor.leaves)
    leaves = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    tree = merkle.build(leaves)
    proof = tree.proof(entry.index)
    result.proof = [_hex(p) for p in proof]
    if _hex(tree.root) != anchor.root or _hex(leaves[entry.index]) != entry.leaf:
        result.reasons.append("the stored anchor record does not match its own leaves")
    if current is None:
        result.reasons.append("the anchored reading is no longer stored as a validated reading")
    elif result.leaf != entry.leaf:
        result.reasons.append("the stored reading differs from the anchored one")
    if check_chain and intent.status in (ChainIntent.Status.MINED, ChainIntent.Status.CONFIRMED):
        _check_on_chain(result, anchor, current, proof)
    if result.reasons:
        result.verdict = TAMPERED
    elif intent.status not in (ChainIntent.Status.MINED, ChainIntent.Status.CONFIRMED):
        result.verdict = NOT_ANCHORED
        result.reasons.append(f"the anchoring transaction is {intent.status}, not on chain yet")
    else:
        result.verdict = OK
    return result


def _check_on_chain(result: ReadingVerification, anchor: MeterAnchor, current: Any, proof) -> None:
    try:
        # the oracle that holds this anchor (an older deployment after an upgrade)
        oracle = client.contract("MeterOracle", address=anchor.intent.contract_address or None)
        start = _unix(anchor.interval_start)
        batch = oracle.functions.batchId(start, anchor.version).call()
        result.onchain_root = _hex(oracle.functions.anchors(batch).call()[0])
        if current is not None:
            reading = current.fields.abi_values()
            sig_ok, included = oracle.functions.verifyReading(
                start, anchor.version, reading, current.signature, proof
            ).call()
            result.signature_valid_onchain = bool(sig_ok)
            result.included_onchain = bool(included)
    except Exception as exc:  # noqa: BLE001 - report, don't fail: the local check still stands
        result.onchain_root = None
        result.chain_note = f"chain not checked: {exc.__class__.__name__}: {exc}"[:300]
        return
    if result.onchain_root != anchor.root:
        result.reasons.append("the on-chain root differs from the recorded anchor")
    if result.signature_valid_onchain is False:
        result.reasons.append(
            "MeterOracle.verifyReading: the signature is not the meter's registered key's "
            "over these fields"
        )
    if result.included_onchain is False:
        result.reasons.append("MeterOracle.verifyReading: not included in the anchored root")
