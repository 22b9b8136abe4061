"""Reads of the billing app. Members only ever see their own issued documents (404 otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404

from apps.billing import invoicing
from apps.billing.models import (
    BankTransaction,
    BillingRun,
    DocumentEmail,
    Invoice,
    InvoiceLine,
    JoinApplication,
    LedgerLine,
    Mandate,
    PaymentInstruction,
    PaymentMethod,
    SepaFile,
    SiteMove,
    SupplyContract,
    SupplyTariff,
    SupplyTariffVersion,
)
from apps.core.exceptions import ApplicationError
from apps.incentives.selectors import redeemed_tokens_for_month, shared_plant_credits_by_member
from apps.market.selectors import StatementEnergy, statement_energy
from apps.market.services.statements import month_bounds

if TYPE_CHECKING:
    from apps.market.models import Statement


def tariff_version_on(*, tariff: SupplyTariff, day: date) -> SupplyTariffVersion:
    """The version of `tariff` valid on `day` ([valid_from, valid_to))."""
    version = (
        SupplyTariffVersion.objects.filter(tariff=tariff, valid_from__lte=day)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=day))
        .order_by("-valid_from")
        .first()
    )
    if version is None:
        raise ApplicationError(
            "No version of this tariff is valid on that day.",
            {"tariff": tariff.code, "day": day.isoformat()},
        )
    return version


def contracts_active(*, first: date, last: date) -> QuerySet[SupplyContract]:
    """Contracts supplying on at least one day of [first, last] (inclusive)."""
    return (
        SupplyContract.objects.filter(start__lte=last)
        .filter(Q(end__isnull=True) | Q(end__gte=first))
        .select_related("tariff")
        .order_by("member_id", "start", "id")
    )


def period_invoice(*, member, period: date) -> Invoice | None:
    """The member's regular invoice of the month (credit notes and rectifying ones aside)."""
    return Invoice.objects.filter(member=member, period=period, kind=Invoice.Kind.INVOICE).first()


def period_invoices(*, period: date) -> QuerySet[Invoice]:
    return Invoice.objects.filter(period=period).select_related("member").order_by("member_id")


def period_invoice_totals(*, period: date) -> dict[str, Any]:
    """The month's regular invoices in one aggregate query: how many, their net, VAT and gross,
    what direct debit collects (positive gross) and what is paid out (negative gross)."""
    zero = Decimal("0.00")
    sums = Invoice.objects.filter(period=period, kind=Invoice.Kind.INVOICE).aggregate(
        n=Count("id"),
        sum_net=Sum("net"),
        sum_vat=Sum("vat"),
        sum_gross=Sum("gross"),
        sum_debit=Sum("gross", filter=Q(gross__gt=0, payment_method=PaymentMethod.DIRECT_DEBIT)),
        sum_payout=Sum("gross", filter=Q(gross__lt=0)),
    )
    return {
        "invoices": sums["n"],
        "net": sums["sum_net"] or zero,
        "vat": sums["sum_vat"] or zero,
        "gross": sums["sum_gross"] or zero,
        "direct_debit": sums["sum_debit"] or zero,
        "payout": -(sums["sum_payout"] or zero) + zero,
    }


def member_invoices(*, member) -> list[Invoice]:
    return list(
        Invoice.objects.filter(member=member, status=Invoice.Status.ISSUED).order_by(
            "-issue_date", "-id"
        )
    )


def member_invoice_get(*, member, invoice_id: int) -> Invoice:
    invoice = Invoice.objects.filter(
        member=member, pk=invoice_id, status=Invoice.Status.ISSUED
    ).first()
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def month_days(period: date) -> tuple[date, date, int]:
    """(first day, last day, number of days) of the month `period` lies in."""
    first = period.replace(day=1)
    nxt = first.replace(year=first.year + (first.month == 12), month=first.month % 12 + 1)
    last = date.fromordinal(nxt.toordinal() - 1)
    return first, last, last.day


def _prices(version: SupplyTariffVersion) -> invoicing.Prices:
    return invoicing.Prices(
        energy_price=version.energy_price,
        feed_in_price=version.feed_in_price,
        network_charge=version.network_charge,
        levy=version.levy,
        standing_charge=version.standing_charge,
        vat_rate=version.vat_rate,
        reward_credit=version.reward_credit,
    )


class PriceBook:
    """Tariff prices by (tariff, day), looked up once per billing run."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, date], invoicing.Prices] = {}

    def on(self, *, tariff: SupplyTariff, day: date) -> invoicing.Prices:
        key = (tariff.pk, day)
        if key not in self._seen:
            self._seen[key] = _prices(tariff_version_on(tariff=tariff, day=day))
        return self._seen[key]


def invoice_lines_compute(
    *,
    member,
    period: date,
    contracts: list[SupplyContract],
    statement: Statement | None,
    prices_book: PriceBook | None = None,
    reward_tokens: int | None = None,
    energy: list[StatementEnergy] | None = None,
    plant_credits: list[invoicing.PlantCredit] | None = None,
) -> list[invoicing.Line]:
    """The lines of the member's invoice for `period` from the market statement (settled energy
    of the month and adjustments of earlier months) and the member's supply contracts.

    Energy is settled per member: it is priced at the tariff of the member's first contract of
    the month; each contract pays its standing charge for its days of supply. Adjustments are
    priced at the tariff version of the month they correct. A billing run passes its
    `prices_book`, the members' `reward_tokens` and the statement's `energy` (each read once
    for all members)."""
    book = prices_book or PriceBook()
    first, last, ndays = month_days(period)
    tariff = contracts[0].tariff
    prices = book.on(tariff=tariff, day=max(first, contracts[0].start))
    lines: list[invoicing.Line] = []
    if energy is None:
        energy = statement_energy(statement=statement) if statement is not None else []
    for row in energy:
        row_prices = prices
        if row.is_adjustment and row.month != first:
            try:
                row_prices = book.on(tariff=tariff, day=row.month)
            except ApplicationError:
                row_prices = prices  # the tariff started later: today's prices
        settled = invoicing.SettledEnergy(
            month=row.month,
            is_adjustment=row.is_adjustment,
            grid_import_wh=row.grid_import_wh,
            grid_export_wh=row.grid_export_wh,
            bought_wh=row.bought_wh,
            sold_wh=row.sold_wh,
            p2p_purchase=row.p2p_purchase,
            p2p_sale=row.p2p_sale,
            network_fee=row.network_fee,
        )
        lines += invoicing.energy_lines(energy=settled, prices=row_prices)
    periods = []
    for contract in contracts:
        since = max(first, contract.start)
        until = min(last, contract.end or last)
        periods.append(
            invoicing.StandingPeriod(
                contract=contract.reference,
                days=until.toordinal() - since.toordinal() + 1,
                month_days=ndays,
            )
        )
    lines += invoicing.standing_lines(periods=periods, prices=prices)
    start, end = month_bounds(first)
    tokens = (
        reward_tokens
        if reward_tokens is not None
        else redeemed_tokens_for_month(month=first, end=end, member_ids=[member.pk]).get(
            member.pk, 0
        )
    )
    lines += invoicing.reward_lines(tokens=tokens, prices=prices)
    if plant_credits is None:
        plant_credits = plant_credits_for_month(month=first, member_ids=[member.pk]).get(
            member.pk, []
        )
    lines += invoicing.shared_plant_lines(credits=plant_credits, prices=prices)
    return lines


def plant_credits_for_month(
    *, month: date, member_ids: list[int] | None = None
) -> dict[int, list[invoicing.PlantCredit]]:
    """Shareholders' shared-plant credits of the month, by member id (one query)."""
    return {
        member_id: [
            invoicing.PlantCredit(asset=c.asset, mode=c.mode, wh=c.wh, amount_cents=c.amount_cents)
            for c in credits
        ]
        for member_id, credits in shared_plant_credits_by_member(
            month=month, member_ids=member_ids
        ).items()
    }


def member_active_mandate(*, member) -> Mandate | None:
    return Mandate.objects.filter(member=member, status=Mandate.Status.ACTIVE).first()


def documents_to_pay(*, period: date) -> list[Invoice]:
    """Issued documents of the month that no SEPA file carries yet (pending or settled), less
    an annulled invoice and its credit note when neither has gone to the bank: they cancel out."""
    live = PaymentInstruction.objects.filter(
        status__in=[PaymentInstruction.Status.PENDING, PaymentInstruction.Status.SETTLED]
    )
    documents = list(
        Invoice.objects.filter(period=period, status=Invoice.Status.ISSUED)
        .exclude(pk__in=live.values("invoice_id"))
        .select_related("member", "original")
        .order_by("member_id", "id")
    )
    open_ids = {d.pk for d in documents}
    cancelled = set()
    for doc in documents:
        if doc.kind == Invoice.Kind.CREDIT_NOTE and doc.original_id in open_ids:
            cancelled |= {doc.pk, doc.original_id}
    return [d for d in documents if d.pk not in cancelled]


def period_sepa_files(*, period: date) -> list[SepaFile]:
    return list(SepaFile.objects.filter(period=period).order_by("created_at", "id"))


def invoice_open_amount(*, invoice: Invoice) -> Decimal:
    """What the member still owes on this document (negative: what we still owe them)."""
    total = LedgerLine.objects.filter(
        account=LedgerLine.Account.RECEIVABLE, invoice=invoice
    ).aggregate(s=Sum("amount"))["s"]
    return total or Decimal("0.00")


def member_balance(*, member) -> Decimal:
    """The member's account: positive when the member owes the cooperative."""
    total = LedgerLine.objects.filter(
        account=LedgerLine.Account.RECEIVABLE, member=member
    ).aggregate(s=Sum("amount"))["s"]
    return total or Decimal("0.00")


def member_ledger(*, member) -> list[LedgerLine]:
    return list(
        LedgerLine.objects.filter(account=LedgerLine.Account.RECEIVABLE, member=member)
        .select_related("entry", "invoice")
        .order_by("entry__booked_on", "entry_id", "id")
    )


def unmatched_bank_transactions() -> list[BankTransaction]:
    return list(
        BankTransaction.objects.filter(status=BankTransaction.Status.UNMATCHED)
        .select_related("statement")
        .order_by("booking_date", "id")
    )


AGING_BUCKETS = ("0-30", "31-60", "61-90", "90+")


def aging_report(*, today: date) -> list[dict]:
    """Open amounts per member by days past due (0–30 includes what is not yet due)."""
    open_by_invoice = dict(
        LedgerLine.objects.filter(account=LedgerLine.Account.RECEIVABLE, invoice__isnull=False)
        .values_list("invoice_id")
        .annotate(s=Sum("amount"))
        .filter(s__gt=0)
        .values_list("invoice_id", "s")
    )
    rows: dict[int, dict] = {}
    invoices = Invoice.objects.filter(pk__in=open_by_invoice).select_related("member")
    for invoice in invoices.order_by("member_id", "id"):
        days = (today - invoice.due_date).days if invoice.due_date else 0
        bucket = 0 if days <= 30 else 1 if days <= 60 else 2 if days <= 90 else 3
        row = rows.setdefault(
            invoice.member_id,
            {"member": invoice.member, "amounts": [Decimal("0.00")] * len(AGING_BUCKETS)},
        )
        row["amounts"][bucket] += open_by_invoice[invoice.pk]
    for row in rows.values():
        row["total"] = sum(row["amounts"], Decimal("0.00"))
    return list(rows.values())


def member_emails(*, member) -> list[DocumentEmail]:
    return list(DocumentEmail.objects.filter(invoice__member=member).select_related("invoice")[:50])


def billing_runs() -> list[BillingRun]:
    return list(BillingRun.objects.order_by("-period")[:24])


def sepa_file_get(*, pk: int) -> SepaFile:
    sepa_file = SepaFile.objects.filter(pk=pk).first()
    if sepa_file is None:
        raise Http404("No such file.")
    return sepa_file


def period_sepa_files_recent(*, limit: int = 24) -> list[SepaFile]:
    return list(SepaFile.objects.order_by("-created_at", "-id")[:limit])


def issued_invoice_by_number(*, number: str) -> Invoice | None:
    return Invoice.objects.filter(number=number.strip(), status=Invoice.Status.ISSUED).first()


P2P_KINDS = (
    InvoiceLine.Kind.P2P_PURCHASE,
    InvoiceLine.Kind.P2P_SALE,
    InvoiceLine.Kind.P2P_NETWORK_FEE,
)


@dataclass(frozen=True, slots=True)
class BilledP2P:
    """A member's regular invoice of a month and the P2P amounts it bills (cents): energy
    bought and sold between members and the P2P network fee, adjustments of earlier months
    included; with the P2P amounts of the credit notes that annul it (`credited`, opposite
    signs) and of the rectifying invoices that replace it (`rebilled`), drafts included. What
    the member is billed for P2P in the end is `p2p + credited + rebilled`."""

    member_id: int
    membership_number: str
    period: date
    invoice_id: int
    number: str
    status: str
    statement_id: int | None
    p2p: Decimal
    p2p_lines: int
    credited: Decimal = Decimal("0.00")
    rebilled: Decimal = Decimal("0.00")
    credit_notes: tuple[str, ...] = ()
    rectifying: tuple[str, ...] = ()

    @property
    def billed(self) -> Decimal:
        return self.p2p + self.credited + self.rebilled


def p2p_billed(*, first: date, last: date, member_id: int | None = None) -> list[BilledP2P]:
    """The regular invoices of the months [first, last] (first days) with their P2P sums and
    those of their credit notes and rectifying invoices (two queries), by member and month."""
    invoices = Invoice.objects.filter(
        kind=Invoice.Kind.INVOICE, period__gte=first, period__lte=last
    )
    if member_id is not None:
        invoices = invoices.filter(member_id=member_id)
    rows = invoices.annotate(
        p2p=Sum("lines__net", filter=Q(lines__kind__in=P2P_KINDS)),
        p2p_lines=Count("lines", filter=Q(lines__kind__in=P2P_KINDS)),
    ).values_list(
        "member_id",
        "member__membership_number",
        "period",
        "pk",
        "number",
        "status",
        "statement_id",
        "p2p",
        "p2p_lines",
    )
    corrections: dict[int, list[tuple[str, str, Decimal, int]]] = {}
    for original, kind, pk, number, p2p, count in (
        Invoice.objects.filter(original__in=invoices.values("pk"))
        .annotate(
            p2p=Sum("lines__net", filter=Q(lines__kind__in=P2P_KINDS)),
            p2p_lines=Count("lines", filter=Q(lines__kind__in=P2P_KINDS)),
        )
        .values_list("original_id", "kind", "pk", "number", "p2p", "p2p_lines")
        .order_by("original_id", "id")
    ):
        label = number or f"draft {pk}"
        corrections.setdefault(original, []).append((kind, label, p2p or Decimal("0.00"), count))
    out = []
    for m, n, p, pk, num, st, sid, p2p, count in rows.order_by("member_id", "period"):
        fixes = corrections.get(pk, [])
        credits = [f for f in fixes if f[0] == Invoice.Kind.CREDIT_NOTE]
        rectifying = [f for f in fixes if f[0] == Invoice.Kind.RECTIFYING]
        out.append(
            BilledP2P(
                m, n, p, pk, num, st, sid, p2p or Decimal("0.00"),
                count + sum(f[3] for f in fixes),
                credited=sum((f[2] for f in credits), Decimal("0.00")),
                rebilled=sum((f[2] for f in rectifying), Decimal("0.00")),
                credit_notes=tuple(f[1] for f in credits),
                rectifying=tuple(f[1] for f in rectifying),
            )
        )  # fmt: skip
    return out


def staff_queue_counts() -> dict[str, int]:
    """The staff home's billing work: draft invoices to review and reviewed ones to issue."""
    from django.db.models import Count

    by_status = dict(
        Invoice.objects.filter(status__in=[Invoice.Status.DRAFT, Invoice.Status.REVIEWED])
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        "invoices_to_review": by_status.get(Invoice.Status.DRAFT, 0),
        "invoices_to_issue": by_status.get(Invoice.Status.REVIEWED, 0),
        "join_applications_to_review": JoinApplication.objects.filter(
            status=JoinApplication.Status.VERIFIED
        ).count(),
    }


def member_join_application(*, member) -> JoinApplication | None:
    return JoinApplication.objects.filter(member=member).first()


def member_site_contracts(*, member) -> dict[int, list[SupplyContract]]:
    """The member's supply contracts by connection point id."""
    by_site: dict[int, list[SupplyContract]] = {}
    for contract in SupplyContract.objects.filter(member=member).select_related("tariff"):
        by_site.setdefault(contract.connection_point_id or 0, []).append(contract)
    return by_site


def site_moves_recent(*, limit: int = 50) -> list[SiteMove]:
    """The latest moves out / in, newest first (staff page *Moves*)."""
    return list(
        SiteMove.objects.select_related(
            "connection_point", "leaving_member", "incoming_member", "ended_contract",
            "started_contract",
        ).order_by("-at", "-id")[:limit]
    )  # fmt: skip
