"""Monthly statements of many members at once (the billing run): the same result as
`statement_generate` member by member, in a fixed number of queries per run instead of per
member. Issued statements are returned as they are (their corrections go on the next one)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace

from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.utils import timezone

from apps.accounts.selectors import member_numbers_by_id
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.types import Actor
from apps.market.lock_objects import month_statements_lock
from apps.market.models import SettlementLine, Statement
from apps.market.selectors import tariff_at
from apps.market.services.statements import month_bounds, statement_totals

SUM_FIELDS = (
    SettlementLine.ENERGY_FIELDS
    + SettlementLine.AMOUNT_FIELDS
    + (
        "grid_only_charge",
        "grid_only_credit",
    )
)


def _pseudo_lines(rows: list[dict]) -> list[SimpleNamespace]:
    """One stand-in line per (statement, adjustment or not) sum: statement_totals adds exact
    Decimals and rounds once, so sums in, the same totals out."""
    out = []
    for row in rows:
        values = {f: row[f] if row[f] is not None else 0 for f in SUM_FIELDS}
        net = sum((Decimal(values[f]) for f in SettlementLine.AMOUNT_FIELDS), Decimal(0))
        out.append(SimpleNamespace(is_adjustment=row["is_adjustment"], net_amount=net, **values))
    return out


@transaction.atomic
def statements_generate_for_members(
    *, member_ids: list[int], month: date, actor: Actor = None, now: datetime | None = None
) -> dict[int, Statement]:
    """Create or refresh the draft statements of `month` of these members (issued ones are
    left as they are). Returns {member id: statement}."""
    now = now or timezone.now()
    month = month.replace(day=1)
    start, end = month_bounds(month)
    vat_rate = tariff_at(at=start if start < now else now).vat_rate
    ids = sorted(set(member_ids))
    existing = {s.member_id: s for s in month_statements_lock(member_ids=ids, month=month)}
    numbers = member_numbers_by_id(member_ids=ids)
    created = Statement.objects.bulk_create(
        [
            Statement(
                member_id=m,
                month=month,
                period_start=start,
                period_end=end,
                number=f"{month:%Y%m}-{numbers[m]}",
                vat_rate=vat_rate,
                totals={},
            )
            for m in ids
            if m not in existing
        ],
        batch_size=2000,
    )
    statements = {**existing, **{s.member_id: s for s in created}}
    open_ = {m: s for m, s in statements.items() if s.status != Statement.Status.ISSUED}
    if open_:
        open_ids = [s.pk for s in open_.values()]
        SettlementLine.objects.filter(statement_id__in=open_ids).update(statement=None)
        # This month's lines, plus anything not yet on a statement from before (late
        # corrections of issued months, adjustments): nothing is lost, nothing billed twice.
        SettlementLine.objects.filter(
            member_id__in=list(open_), statement__isnull=True, interval_start__lt=end
        ).update(
            statement_id=Subquery(
                Statement.objects.filter(member_id=OuterRef("member_id"), month=month).values("pk")[
                    :1
                ]
            )
        )
        sums: dict[int, list[dict]] = {}
        for row in (
            SettlementLine.objects.filter(statement_id__in=open_ids)
            .values("statement_id", "is_adjustment")
            .annotate(**{f: Sum(F(f)) for f in SUM_FIELDS}, lines=Count("id"))
            .order_by()
        ):
            sums.setdefault(row["statement_id"], []).append(row)
        to_update = []
        for _, statement in sorted(open_.items()):
            rows = sums.get(statement.pk, [])
            statement.vat_rate = vat_rate
            statement.totals = statement_totals(
                lines=_pseudo_lines(rows),  # type: ignore[arg-type]
                vat_rate=vat_rate,
            )
            if statement.status == Statement.Status.DRAFT:
                to_update.append(statement)
            else:  # a reviewed statement that changes goes back to draft
                statement.transition_to(Statement.Status.DRAFT, actor=actor, update_fields=None)
            audit_log_write(
                event=AuditEvent.STATEMENT_GENERATED,
                actor=actor,
                target=statement,
                details={
                    "lines": int(sum(r["lines"] for r in rows)),
                    "total": statement.totals["total"],
                },
            )
        Statement.objects.bulk_update(to_update, ["vat_rate", "totals"], batch_size=2000)
    return statements


__all__ = ["statements_generate_for_members"]
