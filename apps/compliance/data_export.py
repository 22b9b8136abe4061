"""Member data rights: "export all my data" as one zip (JSON + CSV + Green Button XML).

Reads only the requesting member's own rows (every query filters by that member).
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.selectors import audit_log_about_member
from apps.audit.services import audit_log_write
from apps.billing.selectors import member_join_application
from apps.core.spreadsheets import SafeCsvWriter
from apps.governance.selectors import member_participations
from apps.grid.selectors import member_sites
from apps.incentives.selectors import member_certificate_holdings, member_rewards
from apps.market.selectors import (
    SETTLEMENT_LINE_EXPORT_FIELDS,
    member_settlement_line_values,
    member_statement_rows,
    member_trade_rows,
)
from apps.meters.exports import green_button_xml
from apps.meters.selectors import (
    READING_HISTORY_COLUMNS,
    member_meters,
    member_reading_history,
)
from apps.notifications.selectors import member_notifications_all


def _csv(columns: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = SafeCsvWriter(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [v.isoformat() if isinstance(v, datetime) else ("" if v is None else v) for v in row]
        )
    return out.getvalue().encode("utf-8")


def _green_button(member: Member, readings: list[tuple]) -> bytes:
    """Green Button (NAESB ESPI) Atom feed of the member's current interval readings, from the
    meters app's exporter over the whole span of the member's readings."""
    starts = [row[1] for row in readings]
    end = max(starts) + timedelta(days=1) if starts else timezone.now()
    start = min(starts) if starts else end
    return green_button_xml(member=member, start=start, end=end)


def member_data_export(*, member: Member, actor: Any = None) -> tuple[bytes, str]:
    """Zip of everything the cooperative holds about `member`; the export is audit-logged."""
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
    application = member_join_application(member=member)
    if application is not None:
        membership = {
            field.name: getattr(application, field.attname)
            for field in application._meta.concrete_fields
            if field.name not in ("id", "member", "decided_by", "share_invoice")
        }
        files["membership.json"] = json.dumps(membership, cls=DjangoJSONEncoder, indent=2).encode()
    files["sites.csv"] = _csv(
        ["code", "street", "postal_code", "city", "expected_annual_wh", "pv_peak_w",
         "contracted_power_w"],
        [[s.code, s.street, s.postal_code, s.city, s.expected_annual_wh, s.pv_peak_w,
          s.contracted_power_w] for s in member_sites(member=member)],
    )  # fmt: skip
    meters = member_meters(member=member)
    files["meters.csv"] = _csv(
        ["serial", "asset_kind", "direction", "interval_seconds", "capacity_w", "address",
         "active_from", "active_to"],
        [[m.serial, m.asset_kind, m.direction, m.interval_seconds, m.capacity_w, m.address,
          m.active_from, m.active_to] for m in meters],
    )  # fmt: skip
    readings = member_reading_history(member_id=member.pk)
    files["intervals.csv"] = _csv(list(READING_HISTORY_COLUMNS), [list(r) for r in readings])
    files["green_button.xml"] = _green_button(member, readings)
    files["certificates.csv"] = _csv(
        ["id", "token_id", "range_start", "range_end", "wh", "status", "device",
         "production_start", "production_end", "energy_source", "beneficiary", "claimed_at",
         "parent", "trade"],
        [[c.pk, c.token_id, c.range_start, c.range_end, c.wh, c.status, c.device.serial,
          c.production_start, c.production_end, c.energy_source, c.beneficiary, c.claimed_at,
          c.parent_id, c.trade_ref]
         for c in member_certificate_holdings(member=member)],
    )  # fmt: skip
    files["rewards.csv"] = _csv(
        ["id", "kind", "period", "basis_wh", "tokens", "created_at"],
        [[r.pk, r.kind, r.period_ref, r.basis_wh, r.tokens, r.created_at]
         for r in member_rewards(member=member)],
    )  # fmt: skip
    files.update(_market_files(member))
    files["notifications.csv"] = _csv(
        ["id", "created_at", "kind", "subject", "body", "link", "in_inbox", "read_at"],
        [[n.pk, n.created_at, n.kind, n.subject, n.body, n.link, n.in_inbox, n.read_at]
         for n in member_notifications_all(member=member)],
    )  # fmt: skip
    files["governance.csv"] = _csv(
        ["proposal", "title", "assembly", "cast_by_proxy"],
        [[p.proposal_id, p.proposal.title, p.proposal.assembly.title,
          p.cast_by.membership_number if p.cast_by else ""]
         for p in member_participations(member=member)],
    )  # fmt: skip
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
        "member.json profile and login; membership.json your application to join (consents "
        "with their versions, shares); sites.csv your sites; meters.csv your meters; "
        "intervals.csv every reading "
        "version (Wh, ESPI quality code); green_button.xml the same as Green Button (ESPI); "
        "certificates.csv, rewards.csv; trades.csv, settlement_lines.csv, statements.csv your "
        "market records; notifications.csv what we told you; governance.csv the votes you took "
        "part in (how you voted is secret and stored with no link to you: your receipt is the "
        "only record); audit_log.csv audited actions by you or about you.\n"
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


def _market_files(member: Member) -> dict[str, bytes]:
    return {
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
                    t.id,
                    t.interval_start,
                    t.side,
                    t.counterparty_zone,
                    t.wh_delivered,
                    t.price,
                    t.fee_per_kwh,
                ]
                for t in member_trade_rows(member=member)
            ],
        ),  # fmt: skip
        "statements.csv": _csv(
            ["number", "month", "status", "totals"],
            [
                [s.number, s.month, s.status, json.dumps(s.totals, sort_keys=True, default=str)]
                for s in member_statement_rows(member=member)
            ],
        ),  # fmt: skip
        "settlement_lines.csv": _csv(
            list(SETTLEMENT_LINE_EXPORT_FIELDS),
            [list(row) for row in member_settlement_line_values(member=member)],
        ),
    }
