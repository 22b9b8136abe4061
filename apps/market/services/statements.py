"""Monthly member statements: generate (draft), review, issue. Issued statements are immutable;
later corrections arrive as adjustment lines on the member's next statement."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.selectors import actor_user
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.spreadsheets import SafeCsvWriter
from apps.core.types import Actor
from apps.market.lock_objects import member_statement_lock, statement_lock
from apps.market.models import SettlementLine, Statement, Trade
from apps.market.selectors import tariff_at
from apps.notifications.models import Kind as NotificationKind
from apps.notifications.services import notify

CENT = Decimal("0.01")
CHARGE_FIELDS = ("p2p_purchase", "network_fee", "grid_import")
CREDIT_FIELDS = ("p2p_sale", "grid_export")


def _cents(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[first local midnight of the month, first of the next) in UTC (cooperative time zone)."""
    tz = ZoneInfo(settings.COOPERATIVE_TIME_ZONE)
    first = month.replace(day=1)
    nxt = first.replace(year=first.year + (first.month == 12), month=first.month % 12 + 1)
    start = datetime(first.year, first.month, 1, tzinfo=tz).astimezone(UTC)
    end = datetime(nxt.year, nxt.month, 1, tzinfo=tz).astimezone(UTC)
    return start, end


def statement_totals(*, lines: list[SettlementLine], vat_rate: Decimal) -> dict[str, str]:
    """Totals of a statement from its lines, rounded once to cents (strings, for JSON)."""
    s = {
        f: Decimal(0)
        for f in SettlementLine.AMOUNT_FIELDS + ("grid_only_charge", "grid_only_credit")
    }
    e = dict.fromkeys(SettlementLine.ENERGY_FIELDS, 0)
    adjustments = Decimal(0)
    for line in lines:
        for f in s:
            s[f] += getattr(line, f)
        for f in e:
            e[f] += getattr(line, f)
        if line.is_adjustment:
            adjustments += line.net_amount
    charges = _cents(sum((s[f] for f in CHARGE_FIELDS), Decimal(0)))
    credits = _cents(sum((s[f] for f in CREDIT_FIELDS), Decimal(0)))
    vat = _cents(charges * vat_rate)
    total = charges + credits + vat
    grid_only = (
        _cents(s["grid_only_charge"])
        + _cents(_cents(s["grid_only_charge"]) * vat_rate)
        + (_cents(s["grid_only_credit"]))
    )
    out = {f: str(_cents(v)) for f, v in s.items()}
    out.update({f: str(v) for f, v in e.items()})
    out.update(
        {
            "adjustments": str(_cents(adjustments)),
            "charges": str(charges),
            "credits": str(credits),
            "net": str(charges + credits),
            "vat": str(vat),
            "total": str(total),
            "grid_only_total": str(grid_only),
            "savings": str(grid_only - total),
        }
    )
    return out


@transaction.atomic
def statement_generate(
    *, member, month: date, actor: Actor = None, now: datetime | None = None
) -> Statement:
    """Create or refresh the member's draft statement for `month`. An issued statement is
    never rewritten (ApplicationError); its late corrections go on the next statement."""
    now = now or timezone.now()
    month = month.replace(day=1)
    start, end = month_bounds(month)
    statement = member_statement_lock(member=member, month=month)
    if statement is not None and statement.status == Statement.Status.ISSUED:
        raise ApplicationError(
            "An issued statement cannot be changed; corrections go on the next statement.",
            {"statement": statement.number},
        )
    vat_rate = tariff_at(at=start if start < now else now).vat_rate
    if statement is None:
        statement = Statement.objects.create(
            member=member,
            month=month,
            period_start=start,
            period_end=end,
            number=f"{month:%Y%m}-{member.membership_number}",
            vat_rate=vat_rate,
        )
    else:
        SettlementLine.objects.filter(statement=statement).update(statement=None)
        statement.vat_rate = vat_rate
    # This month's lines, plus anything not yet on a statement from before (late corrections
    # of issued months, adjustments): nothing is lost, nothing is billed twice.
    SettlementLine.objects.filter(
        member=member, statement__isnull=True, interval_start__lt=end
    ).update(statement=statement)
    lines = list(SettlementLine.objects.filter(statement=statement))
    statement.totals = statement_totals(lines=lines, vat_rate=vat_rate)
    if statement.status == Statement.Status.DRAFT:
        statement.save()
    else:  # a reviewed statement that changes goes back to draft
        statement.transition_to(Statement.Status.DRAFT, actor=actor, update_fields=None)
    audit_log_write(
        event=AuditEvent.STATEMENT_GENERATED,
        actor=actor,
        target=statement,
        details={"lines": len(lines), "total": statement.totals["total"]},
    )
    return statement


@transaction.atomic
def statement_review(*, statement: Statement, actor: Actor) -> Statement:
    statement = statement_lock(statement.pk)
    statement.reviewed_by = actor_user(actor)
    statement.transition_to(
        Statement.Status.REVIEWED,
        actor=actor,
        event=AuditEvent.STATEMENT_REVIEWED,
        update_fields=["reviewed_by"],
    )
    return statement


@transaction.atomic
def statement_issue(
    *, statement: Statement, actor: Actor, now: datetime | None = None, notify_member: bool = True
) -> Statement:
    """Issue a reviewed statement and tell the member (`notify_member=False` when the invoice
    that bills it tells them instead)."""
    statement = statement_lock(statement.pk)
    statement.issued_at = now or timezone.now()
    statement.transition_to(
        Statement.Status.ISSUED,
        actor=actor,
        event=AuditEvent.STATEMENT_ISSUED,
        details={"total": statement.totals.get("total")},
        update_fields=["issued_at"],
    )
    if not notify_member:
        return statement
    notify(
        member=statement.member,
        kind=NotificationKind.STATEMENT,
        subject=f"Your statement for {statement.period_start:%B %Y} is ready",
        body=f"Statement {statement.number}: total {statement.totals.get('total')}.",
        link=reverse("market:statement_detail", args=[statement.pk]),
        dedup_key=f"statement:{statement.pk}",
        actor=actor,
    )
    return statement


# --- rendering (reads only) -------------------------------------------------------------------


def statement_context(*, statement: Statement) -> dict[str, Any]:
    lines = list(statement.lines.order_by("interval_start", "id"))
    adjustments = [line for line in lines if line.is_adjustment]
    trades = Trade.objects.filter(
        Q(seller=statement.member) | Q(buyer=statement.member),
        interval_start__gte=statement.period_start,
        interval_start__lt=statement.period_end,
    )
    zones: dict[tuple[str, str], dict[str, Any]] = {}
    for t in trades:
        bought = t.buyer_id == statement.member_id
        key = ("bought" if bought else "sold", t.seller_zone if bought else t.buyer_zone)
        row = zones.setdefault(key, {"direction": key[0], "zone": key[1], "wh": 0, "trades": 0})
        row["wh"] += t.wh_delivered if bought else t.wh_from_seller
        row["trades"] += 1
    return {
        "statement": statement,
        "member": statement.member,
        "totals": statement.totals,
        "adjustments": adjustments,
        "zones": sorted(zones.values(), key=lambda r: (r["direction"], r["zone"])),
        "vat_percent": (statement.vat_rate * 100).normalize(),
    }


def statement_pdf(*, statement: Statement) -> bytes:
    """The statement as PDF (WeasyPrint), rendered from market/statement_pdf.html."""
    from weasyprint import HTML

    html = render_to_string("market/statement_pdf.html", statement_context(statement=statement))
    return HTML(string=html).write_pdf()


def statement_csv(*, statement: Statement) -> str:
    buf = io.StringIO()
    writer = SafeCsvWriter(buf)
    fields = SettlementLine.ENERGY_FIELDS + SettlementLine.AMOUNT_FIELDS
    writer.writerow(["interval_start", "kind", *fields, "net_amount", "reason"])
    for line in statement.lines.order_by("interval_start", "id"):
        writer.writerow(
            [
                line.interval_start.isoformat(),
                "adjustment" if line.is_adjustment else "settlement",
                *[getattr(line, f) for f in fields],
                line.net_amount,
                line.reason,
            ]
        )
    writer.writerow([])
    for key, value in statement.totals.items():
        writer.writerow(["total", key, value])
    return buf.getvalue()
