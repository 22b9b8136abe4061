"""Monthly statements of many members at once (the billing run): the same result as
`statement_generate` member by member, in a fixed number of queries per run instead of per
member. Issued statements are returned as they are (their corrections go on the next one)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace

from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from apps.accounts.selectors import member_numbers_by_id
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write_many
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


def _lines_attach(*, member_ids: list[int], month: date, end: datetime) -> None:
    """Put the members' lines that are on no statement yet (up to `end`) on their statement of
    `month`: one UPDATE joined to the statements (a hash join; Django's `update()` with a
    subquery runs one index lookup per line)."""
    lines, statements = SettlementLine._meta.db_table, Statement._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {lines} AS l SET statement_id = s.id FROM {statements} AS s "  # noqa: S608
            "WHERE s.month = %s AND s.member_id = l.member_id AND l.member_id = ANY(%s) "
            "AND l.statement_id IS NULL AND l.interval_start < %s",
            [month, member_ids, end],
        )


@transaction.atomic
def statements_generate_for_members(
    *, member_ids: list[int], month: date, actor: Actor = None, now: datetime | None = None
) -> dict[int, Statement]:
    """Create or refresh the draft statements of `month` of these members (issued ones are
    left as they are). Returns {member id: statement}. A statement whose lines and totals did
    not change is not rewritten (its audit row says so: `"changed": false`)."""
    now = now or timezone.now()
    month = month.replace(day=1)
    start, end = month_bounds(month)
    vat_rate = tariff_at(at=start if start < now else now).vat_rate
    ids = sorted(set(member_ids))
    existing = {s.member_id: s for s in month_statements_lock(member_ids=ids, month=month)}
    open_ = {m: s for m, s in existing.items() if s.status != Statement.Status.ISSUED}
    affected = [m for m in ids if m not in existing or m in open_]
    # What each affected member's statement will carry: the lines already on it, plus anything
    # not yet on a statement up to the end of the month (late corrections of issued months,
    # adjustments). Nothing is lost, nothing billed twice. Sums first, so new statements are
    # created with their totals and unchanged ones are not written.
    carried = Q(statement_id__in=[s.pk for s in open_.values()]) | Q(
        member_id__in=affected, statement__isnull=True, interval_start__lt=end
    )
    sums: dict[int, list[dict]] = {}
    for row in (
        SettlementLine.objects.filter(carried)
        .values("member_id", "is_adjustment")
        .annotate(**{f: Sum(F(f)) for f in SUM_FIELDS}, lines=Count("id"))
        .order_by()
    ):
        sums.setdefault(row["member_id"], []).append(row)

    def totals(member_id: int) -> dict[str, str]:
        pseudo = _pseudo_lines(sums.get(member_id, []))
        return statement_totals(lines=pseudo, vat_rate=vat_rate)  # type: ignore[arg-type]

    numbers = member_numbers_by_id(member_ids=[m for m in affected if m not in existing])
    created = Statement.objects.bulk_create(
        [
            Statement(
                member_id=m,
                month=month,
                period_start=start,
                period_end=end,
                number=f"{month:%Y%m}-{numbers[m]}",
                vat_rate=vat_rate,
                totals=totals(m),
            )
            for m in affected
            if m not in existing
        ],
        batch_size=2000,
    )
    changed: list[Statement] = []
    reverted: list[Statement] = []
    for member_id, statement in sorted(open_.items()):
        new_totals = totals(member_id)
        if new_totals == statement.totals and statement.vat_rate == vat_rate:
            continue
        statement.totals, statement.vat_rate = new_totals, vat_rate
        if statement.status == Statement.Status.DRAFT:
            changed.append(statement)
        else:  # a reviewed statement that changes goes back to draft
            statement.transition_to(Statement.Status.DRAFT, actor=actor, update_fields=None)
            reverted.append(statement)
    Statement.objects.bulk_update(changed, ["vat_rate", "totals"], batch_size=2000)
    _lines_attach(member_ids=affected, month=month, end=end)
    statements = {**existing, **{s.member_id: s for s in created}}
    rewritten = {s.pk for s in (*created, *changed, *reverted)}
    audit_log_write_many(
        event=AuditEvent.STATEMENT_GENERATED,
        actor=actor,
        rows=[
            (
                statements[m],
                {
                    "lines": int(sum(r["lines"] for r in sums.get(m, []))),
                    "total": statements[m].totals["total"],
                    "changed": statements[m].pk in rewritten,
                },
            )
            for m in affected
        ],
    )
    return statements


__all__ = ["statements_generate_for_members"]
