"""Member data rights: "export all my data" as one zip (JSON + CSV + Green Button XML).

Reads only the requesting member's own rows (every query filters by that member).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import Any
from xml.sax.saxutils import escape

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from apps.audit.events import AuditEvent
from apps.audit.selectors import audit_log_about_member
from apps.audit.services import audit_log_write

ESPI_NS = "http://naesb.org/espi"
ATOM_NS = "http://www.w3.org/2005/Atom"


def _csv(columns: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [v.isoformat() if isinstance(v, datetime) else ("" if v is None else v) for v in row]
        )
    return out.getvalue().encode("utf-8")


def _member_readings(member) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.serial, r.interval_start, r.interval_seconds, r.import_wh, r.export_wh, "
            "r.quality, r.version, r.is_current, r.reason "
            "FROM meters_reading r JOIN meters_meter m ON m.id = r.meter_id "
            "WHERE m.member_id = %s ORDER BY m.serial, r.interval_start, r.version",
            [member.pk],
        )
        return cursor.fetchall()


def green_button_xml(member, readings: list[tuple]) -> bytes:
    """Green Button (NAESB ESPI) Atom feed of the member's current interval readings.

    Uses the meters app's exporter (`apps.meters.exports.green_button_xml`) over the whole span
    of the member's readings; without it, writes the ESPI structure itself: per meter a
    UsagePoint → MeterReading → ReadingType (Wh, 15-min) → IntervalBlock of IntervalReadings
    (timePeriod, value, ReadingQuality)."""
    try:
        func = getattr(import_module("apps.meters.exports"), "green_button_xml", None)
    except ImportError:
        func = None
    if func is not None:
        starts = [row[1] for row in readings]
        end = max(starts) + timedelta(days=1) if starts else timezone.now()
        start = min(starts) if starts else end
        body = func(member=member, start=start, end=end)  # every reading the member has
        return body.encode("utf-8") if isinstance(body, str) else body
    by_meter: dict[str, list[tuple]] = {}
    for row in readings:
        if row[7]:  # current versions only
            by_meter.setdefault(row[0], []).append(row)
    now = timezone.now().astimezone(UTC).isoformat()
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<feed xmlns="{ATOM_NS}" xmlns:espi="{ESPI_NS}">',
        f"<id>urn:energysphere:member:{escape(member.membership_number)}</id>",
        "<title>EnergySphere Green Button export</title>",
        f"<updated>{now}</updated>",
    ]
    for n, (serial, rows) in enumerate(sorted(by_meter.items()), start=1):
        base = f"urn:energysphere:usagepoint:{escape(serial)}"
        parts += [
            f"<entry><id>{base}</id><title>{escape(serial)}</title><updated>{now}</updated>",
            "<content><espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind>"
            "</espi:ServiceCategory></espi:UsagePoint></content></entry>",
            f"<entry><id>{base}:reading</id><updated>{now}</updated>"
            "<content><espi:MeterReading/></content></entry>",
            f"<entry><id>{base}:readingtype</id><updated>{now}</updated><content>"
            "<espi:ReadingType><espi:accumulationBehaviour>4</espi:accumulationBehaviour>"
            "<espi:commodity>1</espi:commodity><espi:flowDirection>1</espi:flowDirection>"
            f"<espi:intervalLength>{rows[0][2]}</espi:intervalLength>"
            "<espi:powerOfTenMultiplier>0</espi:powerOfTenMultiplier><espi:uom>72</espi:uom>"
            "</espi:ReadingType></content></entry>",
            f"<entry><id>{base}:block:{n}</id><updated>{now}</updated><content>"
            "<espi:IntervalBlock>",
            f"<espi:interval><espi:duration>{len(rows) * rows[0][2]}</espi:duration>"
            f"<espi:start>{int(rows[0][1].timestamp())}</espi:start></espi:interval>",
        ]
        for _serial, start, secs, imp, _exp, quality, *_ in rows:
            parts.append(
                "<espi:IntervalReading><espi:ReadingQuality><espi:quality>"
                f"{quality}</espi:quality></espi:ReadingQuality><espi:timePeriod>"
                f"<espi:duration>{secs}</espi:duration><espi:start>{int(start.timestamp())}"
                f"</espi:start></espi:timePeriod><espi:value>{imp}</espi:value>"
                "</espi:IntervalReading>"
            )
        parts.append("</espi:IntervalBlock></content></entry>")
    parts.append("</feed>")
    return "\n".join(parts).encode("utf-8")


def member_data_export(*, member, actor: Any = None) -> tuple[bytes, str]:
    """Zip of everything the cooperative holds about `member`; the export is audit-logged."""
    from apps.incentives.models import Certificate, Reward
    from apps.meters.models import Meter

    user = member.user
    files: dict[str, bytes] = {}
    profile = {
        "membership_number": member.membership_number,
        "legal_name": member.legal_name,
        "kind": member.kind,
        "status": member.status,
        "joined": member.joined,
        "address": {
            "street": member.street,
            "postal_code": member.postal_code,
            "city": member.city,
            "country": member.country,
        },
        "wallet_address": member.wallet_address,
        "wallet_linked_at": member.wallet_linked_at,
        "pseudonymised_at": member.pseudonymised_at,
        "login": {
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "date_joined": user.date_joined,
            "last_login": user.last_login,
        },
        "exported_at": timezone.now(),
    }
    files["member.json"] = json.dumps(profile, cls=DjangoJSONEncoder, indent=2).encode()
    meters = list(Meter.objects.filter(member=member).order_by("serial"))
    files["meters.csv"] = _csv(
        ["serial", "asset_kind", "direction", "interval_seconds", "capacity_w", "address",
         "active_from", "active_to"],
        [[m.serial, m.asset_kind, m.direction, m.interval_seconds, m.capacity_w, m.address,
          m.active_from, m.active_to] for m in meters],
    )  # fmt: skip
    readings = _member_readings(member)
    files["intervals.csv"] = _csv(
        ["meter", "interval_start", "interval_seconds", "import_wh", "export_wh", "quality",
         "version", "is_current", "reason"],
        [list(r) for r in readings],
    )  # fmt: skip
    files["green_button.xml"] = green_button_xml(member, readings)
    files["certificates.csv"] = _csv(
        ["id", "token_id", "range_start", "range_end", "wh", "status", "device",
         "production_start", "production_end", "energy_source", "beneficiary", "claimed_at",
         "parent", "trade"],
        [[c.pk, c.token_id, c.range_start, c.range_end, c.wh, c.status, c.device.serial,
          c.production_start, c.production_end, c.energy_source, c.beneficiary, c.claimed_at,
          c.parent_id, c.trade_ref]
         for c in Certificate.objects.filter(owner=member).select_related("device")],
    )  # fmt: skip
    files["rewards.csv"] = _csv(
        ["id", "kind", "period", "basis_wh", "tokens", "created_at"],
        [[r.pk, r.kind, r.period_ref, r.basis_wh, r.tokens, r.created_at]
         for r in Reward.objects.filter(member=member)],
    )  # fmt: skip
    files.update(_market_files(member))
    audit = audit_log_about_member(
        user_id=user.pk,
        member_id=member.pk,
        membership_number=member.membership_number,
    )
    files["audit_log.csv"] = _csv(
        ["id", "created_at", "event", "actor", "target_type", "target_id", "details"],
        [[a.pk, a.created_at, a.event, a.actor_label, a.target_type, a.target_id,
          json.dumps(a.details, sort_keys=True, default=str)] for a in audit],
    )  # fmt: skip
    files["README.txt"] = (
        "EnergySphere — all data held about member "
        f"{member.membership_number}, exported {profile['exported_at']:%Y-%m-%d %H:%M} UTC.\n"
        "member.json profile and login; meters.csv your meters; intervals.csv every reading "
        "version (Wh, ESPI quality code); green_button.xml the same as Green Button (ESPI); "
        "certificates.csv, rewards.csv; trades.csv, settlement_lines.csv, statements.csv your "
        "market records; audit_log.csv audited actions by you or about you.\n"
    ).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in sorted(files.items()):
            zf.writestr(name, body)
    audit_log_write(
        event=AuditEvent.MEMBER_DATA_EXPORTED,
        actor=actor,
        target=member,
        details={"files": sorted(files), "readings": len(readings)},
    )
    filename = f"energysphere-my-data-{member.membership_number}-{timezone.now():%Y%m%d}.zip"
    return buf.getvalue(), filename


def _market_files(member) -> dict[str, bytes]:
    try:
        from apps.market.models import SettlementLine, Statement, Trade
    except ImportError:
        return {}
    trades = (
        Trade.objects.filter(Q(seller=member) | Q(buyer=member))
        .select_related("seller", "buyer")
        .order_by("interval_start", "id")
    )
    files = {
        "trades.csv": _csv(
            [
                "id",
                "interval_start",
                "side",
                "counterparty_zone",
                "wh_delivered",
                "price",
                "fee_per_kwh",
            ],
            [
                [
                    t.pk,
                    t.interval_start,
                    "sell" if t.seller_id == member.pk else "buy",
                    t.buyer_zone if t.seller_id == member.pk else t.seller_zone,
                    t.wh_delivered,
                    t.price,
                    t.fee_per_kwh,
                ]
                for t in trades
            ],
        ),  # fmt: skip
        "statements.csv": _csv(
            ["number", "month", "status", "totals"],
            [
                [s.number, s.month, s.status, json.dumps(s.totals, sort_keys=True, default=str)]
                for s in Statement.objects.filter(member=member).order_by("month")
            ],
        ),  # fmt: skip
    }
    fields = ["interval_start", "is_adjustment", "reason", *SettlementLine.ENERGY_FIELDS,
              *SettlementLine.AMOUNT_FIELDS]  # fmt: skip
    files["settlement_lines.csv"] = _csv(
        fields,
        [[getattr(line, f) for f in fields]
         for line in SettlementLine.objects.filter(member=member).order_by("interval_start", "id")],
    )  # fmt: skip
    return files
