"""The staff home (the admin index): what needs attention today, with counts and links to the
filtered lists, and the health of the pipeline at a glance. Staff and auditors see the same
numbers; the links lead to lists where only staff can act. Reads every app through its
selectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from celery import current_app
from celery.schedules import maybe_schedule
from django.urls import reverse

from apps.accounts import selectors as accounts_selectors
from apps.billing import selectors as billing_selectors
from apps.chain import selectors as chain_selectors
from apps.compliance import selectors as compliance_selectors
from apps.grid import selectors as grid_selectors
from apps.market import selectors as market_selectors
from apps.meters import selectors as meters_selectors
from apps.portal.activity import beat_last_runs, workers_last_seen

#: A worker not heard from for this long is not counted as alive.
WORKER_ALIVE_S = 120
#: A beat job this late past its due time is flagged.
BEAT_GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class TodoItem:
    key: str
    label: str
    count: int
    url: str


@dataclass(frozen=True)
class HealthItem:
    label: str
    value: str
    ok: bool


@dataclass(frozen=True)
class BeatRow:
    name: str
    last_run: datetime | None
    ok: bool


@dataclass
class StaffHome:
    todo: list[TodoItem] = field(default_factory=list)
    health: list[HealthItem] = field(default_factory=list)
    beat: list[BeatRow] = field(default_factory=list)
    workers: list[tuple[str, datetime]] = field(default_factory=list)

    @property
    def open_total(self) -> int:
        return sum(item.count for item in self.todo)


def _list(model: str, **filters: str) -> str:
    url = reverse(f"admin:{model}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def _todo(*, now: datetime) -> list[TodoItem]:
    market = market_selectors.staff_queue_counts()
    billing = billing_selectors.staff_queue_counts()
    meters = meters_selectors.staff_queue_counts(now=now)
    chain = chain_selectors.staff_queue_counts(now=now)
    stuck_before = (now - timedelta(seconds=chain_selectors.INTENT_STUCK_AFTER_S)).isoformat()
    batch_before = (now - timedelta(seconds=meters_selectors.BATCH_STUCK_AFTER_S)).isoformat()
    items = [
        TodoItem("settlement_runs", "Settlement runs awaiting approval",
                 market["settlement_runs_to_approve"],
                 _list("market_settlementrun", status__exact="settled")),
        TodoItem("statements_review", "Statements to review", market["statements_to_review"],
                 _list("market_statement", status__exact="draft")),
        TodoItem("statements_issue", "Statements reviewed, to issue",
                 market["statements_to_issue"],
                 _list("market_statement", status__exact="reviewed")),
        TodoItem("invoices_review", "Invoices to review", billing["invoices_to_review"],
                 _list("billing_invoice", status__exact="draft")),
        TodoItem("invoices_issue", "Invoices reviewed, to issue", billing["invoices_to_issue"],
                 _list("billing_invoice", status__exact="reviewed")),
    ]  # fmt: skip
    for row in meters["quarantine_by_reason"]:  # type: ignore[attr-defined]
        items.append(
            TodoItem(f"quarantine_{row['reason']}", f"Quarantine: {row['reason']}", row["count"],
                     _list("meters_quarantine", status__exact="open", reason__exact=row["reason"]))
        )  # fmt: skip
    if not meters["quarantine_by_reason"]:
        items.append(TodoItem("quarantine", "Quarantine", 0,
                              _list("meters_quarantine", status__exact="open")))  # fmt: skip
    items += [
        TodoItem("conflicts", "Open reading conflicts", int(meters["conflicts_open"]),  # type: ignore[call-overload]
                 _list("meters_conflict", status__exact="open")),
        TodoItem("batches_stuck", "Ingest batches stuck (pending over 5 min)",
                 int(meters["batches_stuck"]),  # type: ignore[call-overload]
                 _list("meters_rawbatch", status__exact="pending",
                       received_at__lt=batch_before)),
        TodoItem("intents_failed", "Chain intents failed", chain["chain_intents_failed"],
                 _list("chain_chainintent", status__exact="failed")),
        TodoItem("intents_stuck", "Chain intents in flight over 10 min",
                 chain["chain_intents_stuck"],
                 _list("chain_chainintent", status__in="pending,signed,sent,mined",
                       updated_at__lt=stuck_before)),
        TodoItem("dr_events", "DR events to publish",
                 grid_selectors.staff_queue_counts()["dr_events_to_publish"],
                 _list("grid_drevent", status__exact="draft")),
        TodoItem("erasure_requests", "Erasure requests",
                 compliance_selectors.staff_queue_counts()["erasure_requests"],
                 _list("compliance_erasurerequest", status__exact="requested")),
    ]  # fmt: skip
    to_review = billing["join_applications_to_review"]
    if to_review:
        link = _list("billing_joinapplication", status__exact="verified")
        items.append(
            TodoItem("join_applications", "Applicants to review (e-mail verified)", to_review, link)
        )
    applicants = accounts_selectors.staff_queue_counts()["applicants"]
    if applicants:
        items.append(TodoItem("applicants", "Membership applicants", applicants,
                              _list("accounts_member", status__exact="applicant")))  # fmt: skip
    return items


def _beat(*, now: datetime) -> list[BeatRow]:
    runs = beat_last_runs()
    rows = []
    for name, entry in sorted((current_app.conf.beat_schedule or {}).items()):
        last = runs.get(entry["task"])
        ok = False
        if last is not None:
            schedule = maybe_schedule(entry["schedule"])
            # remaining_estimate is measured from the schedule's "now": the job is late when
            # its next due time (after the last run) is more than the grace in the past.
            ok = schedule.remaining_estimate(last) > -BEAT_GRACE
        rows.append(BeatRow(name=name, last_run=last, ok=ok))
    return rows


def _health(*, now: datetime, workers: list[tuple[str, datetime]]) -> list[HealthItem]:
    ingest = meters_selectors.ingest_stats(now=now)
    chain = chain_selectors.chain_health_summary(now=now)
    idle = chain["indexer_idle_s"]
    return [
        HealthItem("Ingest rate (readings/s, last minute)", f"{ingest['rate_per_s_1min']:.1f}",
                   True),
        HealthItem("Ingest lag (avg / max s, last 15 min)",
                   f"{ingest['lag_avg_s']:.1f} / {ingest['lag_max_s']:.1f}",
                   ingest["lag_max_s"] < 60),
        HealthItem("Pending ingest batches (oldest s)",
                   f"{ingest['pending_batches']} ({ingest['oldest_pending_s']:.0f})",
                   ingest["oldest_pending_s"] < meters_selectors.BATCH_STUCK_AFTER_S),
        HealthItem("Chain outbox in flight", str(chain["outbox_in_flight"]),
                   True),
        HealthItem("Indexer (last block, idle s)",
                   "not started" if idle is None
                   else f"{chain['indexer_last_block']} ({idle:.0f})",  # type: ignore[str-format]
                   idle is not None and float(idle) < 300),  # type: ignore[arg-type]
        HealthItem("Workers alive (seen in the last 2 min)", str(len(workers)), bool(workers)),
    ]  # fmt: skip


def staff_home(*, now: datetime) -> StaffHome:
    workers = sorted(
        (host, seen)
        for host, seen in workers_last_seen().items()
        if (now - seen).total_seconds() <= WORKER_ALIVE_S
    )
    return StaffHome(
        todo=_todo(now=now),
        health=_health(now=now, workers=workers),
        beat=_beat(now=now),
        workers=workers,
    )
