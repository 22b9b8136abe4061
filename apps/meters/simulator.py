"""Meter simulator: signed reading and status messages as a device sends them, with fault
switches, and a device's command side (`SimDevice`: verifies commands and configuration messages,
refuses replays, signs its command acknowledgements).

Pure (no Django import): the demo's `simulate_meters` command (energy from the demo profiles,
keys from `apps.demo.keys`), `manage.py simulate_device` and the ingest benchmark build messages
here; the energy source and the device keys are passed in.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apps.meters.device_messages import (
    ACK,
    STATUS,
    CommandVerifier,
    ConfigVerifier,
    sign_message,
)
from apps.meters.signing import SignedFields, sign_reading

STEP = 900


@dataclass
class Faults:
    """Probabilities (0..1) per reading."""

    bad_signature: float = 0.0
    duplicates: float = 0.0
    conflicts: float = 0.0
    gaps: float = 0.0
    spikes: float = 0.0
    clock_drift: float = 0.0
    replay: float = 0.0

    def any(self) -> bool:
        return any(vars(self).values())


@dataclass
class SimMeter:
    serial: str
    key: bytes
    register_import_wh: int = 0
    register_export_wh: int = 0
    history: list[dict] = field(default_factory=list)  # recent messages (for replay faults)


def synthetic_energy(serial: str, start: int) -> tuple[int, int]:
    """A plausible household value for meters that are not demo meters (benchmarks)."""
    hour = (start // 3600) % 24
    base = 60 + 140 * (7 <= hour <= 9 or 17 <= hour <= 21)
    jitter = (hash((serial, start)) % 40) - 20
    return max(base + jitter, 0), 0


def reading_doc(meter: SimMeter, start: int, imp: int, exp: int, *, seq: int | None = None,
                key: bytes | None = None, sent_at: float | None = None) -> dict:  # fmt: skip
    seq = start // STEP if seq is None else seq
    fields = SignedFields(meter.serial, seq, start, STEP, imp, exp, meter.register_import_wh,
                          meter.register_export_wh, 0)  # fmt: skip
    doc = {
        "v": 1,
        "serial": meter.serial,
        "seq": seq,
        "start": datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "interval": STEP,
        "import_wh": imp,
        "export_wh": exp,
        "register_import_wh": meter.register_import_wh,
        "register_export_wh": meter.register_export_wh,
        "status": 0,
        "sig": "0x" + sign_reading(key or meter.key, fields).hex(),
    }
    if sent_at is not None:
        doc["sent_at"] = sent_at
    return doc


def interval_messages(
    meters: list[SimMeter], start: int, energy, faults: Faults, rng: random.Random
) -> Iterator[tuple[str, dict]]:
    """(serial, doc) for one interval of every meter, with faults injected."""
    for meter in meters:
        if rng.random() < faults.gaps:
            imp, exp = energy(meter.serial, start)
            meter.register_import_wh += imp  # the meter measured it; the message is lost
            meter.register_export_wh += exp
            continue
        imp, exp = energy(meter.serial, start)
        if rng.random() < faults.spikes:
            imp = imp * 25 + 2000
        meter.register_import_wh += imp
        meter.register_export_wh += exp
        t = start
        if rng.random() < faults.clock_drift:
            t = start + 37  # a drifting clock: the interval start is off the grid
        key = None
        if rng.random() < faults.bad_signature:
            key = bytes(31) + b"\x07"  # signed with the wrong key
        doc = reading_doc(meter, t, imp, exp, key=key)
        yield meter.serial, doc
        meter.history = (meter.history + [doc])[-8:]
        if rng.random() < faults.duplicates:
            yield meter.serial, doc
        if rng.random() < faults.conflicts:
            yield meter.serial, {**reading_doc(meter, t, imp + 1, exp), "register_import_wh":
                                 meter.register_import_wh}  # fmt: skip
        if rng.random() < faults.replay and len(meter.history) > 2:
            old = meter.history[0]
            yield meter.serial, {**old}  # a captured old message sent again


def encode(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def status_doc(
    serial: str, key: bytes, *, now: float, firmware: str = "1.4.2", **state: float | bool
) -> dict:
    """A status message signed by the device key (apps/meters/device_messages.py), with any
    reported device state (`soc_pct=…`, `ev_plugged=…`, `ev_charging=…`)."""
    doc = {"v": 1, "serial": serial, "sent_at": int(now), "firmware": firmware, **state}
    return sign_message(STATUS, doc, key)


@dataclass
class SimDevice:
    """A flexible device's command side: applies a command only when `CommandVerifier` finds it
    signed by the cooperative, for this device, unexpired and not seen before (a replayed
    command is refused), and answers every command with an acknowledgement signed by its key.
    A configuration message is applied only when `ConfigVerifier` finds nothing wrong
    (`configure`)."""

    serial: str
    key: bytes
    verifier: CommandVerifier
    config_verifier: ConfigVerifier | None = None
    config: dict = field(default_factory=dict)  # the configuration applied last
    applied: list[dict] = field(default_factory=list)
    refused: list[tuple[str, dict]] = field(default_factory=list)
    cancelled_events: set[str] = field(default_factory=set)  # DR events the cooperative called off

    def answer(self, doc: object, now: datetime) -> dict:
        if not isinstance(doc, dict):
            doc, refusal = {}, "not a command"
        else:
            refusal = self.verifier.refusal(doc, now)
        if refusal is None and doc.get("status") == "cancelled" and "dr_event" in doc:
            self.cancelled_events.add(str(doc["dr_event"]))
        elif refusal is None:
            self.applied.append(doc)
        else:
            self.refused.append((refusal, doc))
        ack = {
            "command_id": str(doc.get("command_id", "")),
            "serial": self.serial,
            "seq": doc.get("seq"),
            "status": "accepted" if refusal is None else "rejected",
        }
        if refusal is not None:
            ack["reason"] = refusal
        return sign_message(ACK, ack, self.key)

    def configure(self, doc: object, now: datetime, *, topic_serial: str) -> str | None:
        """Apply a configuration message received on `topic_serial`'s config topic; None when
        applied, else the reason it was refused (and nothing changes)."""
        verifier = self.config_verifier or ConfigVerifier(self.serial, "")
        refusal = verifier.refusal(doc, now, topic_serial=topic_serial)
        if refusal is None and isinstance(doc, dict):
            self.config = doc
        return refusal

    def setpoint_w(self, now: datetime) -> int:
        """The set point (W) the last applied command gives for `now` (0 outside it)."""
        if not self.applied:
            return 0
        doc = self.applied[-1]
        try:
            start = datetime.fromisoformat(str(doc["start"]))
            index = int((now - start).total_seconds() // int(doc["step_seconds"]))
            points = list(doc["setpoints_w"])
        except (KeyError, TypeError, ValueError):
            return 0
        return int(points[index]) if 0 <= index < len(points) else 0
