"""Demo work for the staff home (the admin index's to-do queue), made the way it happens in a
real cooperative and through the real ingest pipeline, so a new staff member finds something to
do on the first `make run` (docs/demo.md):

- a new rooftop PV meter was installed at the showcase member's before anyone registered it: its
  device has been sending readings, which wait in quarantine as "unknown meter" — the fix is to
  register it (by hand or by import, key `pending_device_identity()`) and re-process;
- one household meter re-sent an interval it had already reported, with a different value: an
  open conflict for staff to accept or dismiss.

Settlement runs awaiting approval come from the market's demo day. Idempotent."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from apps.demo.keys import demo_device_identity, demo_device_key
from apps.meters.models import Meter
from apps.meters.services import default_seq, device_messages_deliver
from apps.meters.signing import SignedFields, sign_reading

PENDING_SERIAL = "DEMO-PV-PENDING-01"
TOPIC = "demo/readings"


def pending_device_identity() -> tuple[str, str]:
    """(public key hex, address) of the unregistered PV device: what staff register."""
    return demo_device_identity(PENDING_SERIAL)


def reading_message(*, serial: str, key: bytes, start: datetime, import_wh: int,
                    export_wh: int, seq: int | None = None) -> tuple[str, bytes]:  # fmt: skip
    """One signed interval reading (message format v1) as a device sends it."""
    seq = default_seq(start) if seq is None else seq
    fields = SignedFields(serial, seq, int(start.timestamp()), 900, import_wh, export_wh, 0, 0, 0)
    doc = {"v": 1, "serial": serial, "seq": seq, "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "interval": 900, "import_wh": import_wh, "export_wh": export_wh,
           "register_import_wh": 0, "register_export_wh": 0, "status": 0,
           "sig": "0x" + sign_reading(key, fields).hex()}  # fmt: skip
    return TOPIC, json.dumps(doc, separators=(",", ":")).encode()


def pending_device_messages(*, now: datetime, hours: int = 1) -> list[tuple[str, bytes]]:
    """The unregistered device's last `hours` of intervals (PV export around noon)."""
    end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    key = demo_device_key(PENDING_SERIAL)
    starts = [end - timedelta(minutes=15 * k) for k in range(hours * 4, 0, -1)]
    return [
        reading_message(serial=PENDING_SERIAL, key=key, start=s, import_wh=0, export_wh=120 + k)
        for k, s in enumerate(starts)
    ]


def load(context) -> None:
    from apps.meters.models import Conflict, Quarantine

    if (
        not Meter.objects.filter(serial=PENDING_SERIAL).exists()
        and not Quarantine.objects.filter(serial=PENDING_SERIAL).exists()
    ):
        device_messages_deliver(messages=pending_device_messages(now=context.now))
        context.created["quarantined_pending_device"] = 1
    household = next((m for m in context.meters if m.asset_kind == Meter.AssetKind.HOUSEHOLD
                      and m.last_interval_start is not None), None)  # fmt: skip
    if household is None or Conflict.objects.filter(meter=household).exists():
        return
    start = household.last_interval_start - timedelta(hours=2)
    message = reading_message(
        serial=household.serial, key=demo_device_key(household.serial), start=start,
        import_wh=987_654 % (household.capacity_w // 4 or 1) + 1, export_wh=0,
    )  # fmt: skip
    result = device_messages_deliver(messages=[message])
    context.created["conflicts"] = result["conflicts"]
