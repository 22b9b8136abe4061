"""The monthly billing run: lines from settlement and the supply tariff, VAT per rate,
idempotent per period and member, dry runs, the command's JSON summary."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.billing.models import BillingRun, Invoice
from apps.billing.services import billing_run
from apps.billing.tests.factories import (
    SupplyContractFactory,
    SupplyTariffVersionFactory,
    settled,
)
from apps.core.exceptions import ApplicationError
from apps.market.models import Statement
from apps.market.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 5, 8, tzinfo=UTC)
OCT = datetime(2026, 10, 10, 12, tzinfo=UTC)


@pytest.fixture
def contract():
    TariffFactory()  # the market's tariff (settlement prices)
    version = SupplyTariffVersionFactory()
    return SupplyContractFactory(tariff=version.tariff)


def book_october(member):
    settled(member, OCT, grid_import_wh=60_000, bought_wh=50_000, p2p_purchase="10.00",
            network_fee="1.25")  # fmt: skip
    settled(member, OCT.replace(day=11), grid_import_wh=40_000, grid_export_wh=10_000,
            sold_wh=20_000, p2p_sale="-3.00")  # fmt: skip


def lines_of(invoice):
    return {line.kind: line.net for line in invoice.lines.all()}


def test_invoice_lines_price_settled_energy_and_the_tariff_with_vat_per_rate(contract):
    book_october(contract.member)
    summary = billing_run(period="2026-10", now=NOW)
    invoice = Invoice.objects.get(member=contract.member, period=date(2026, 10, 1))
    assert lines_of(invoice) == {
        "p2p_purchase": Decimal("10.00"),  # cleared prices, from settlement
        "p2p_network_fee": Decimal("1.25"),
        "p2p_sale": Decimal("-3.00"),
        "residual_supply": Decimal("30.00"),  # 100 kWh at 0.30
        "network_charge": Decimal("9.00"),  # 100 kWh at 0.09
        "levy": Decimal("3.00"),  # 150 kWh consumed at 0.02
        "unsold_export": Decimal("-0.80"),  # 10 kWh at 0.08
        "standing_charge": Decimal("9.30"),
    }
    # Charges 62.55 at 19 % → 11.88 (rounded once per rate); credits −3.80 at 0 %.
    assert invoice.vat_breakdown == [
        {"rate": "0.1900", "base": "62.55", "vat": "11.88"},
        {"rate": "0.0000", "base": "-3.80", "vat": "0.00"},
    ]
    assert (invoice.net, invoice.vat, invoice.gross) == (
        Decimal("58.75"),
        Decimal("11.88"),
        Decimal("70.63"),
    )
    assert invoice.status == "draft" and invoice.number == ""
    assert summary == {
        "period": "2026-10",
        "invoices": 1,
        "total_net": "58.75",
        "total_vat": "11.88",
        "total_gross": "70.63",
        "direct_debit_total": "70.63",
        "payout_total": "0.00",
        "sepa_files": [],
        "without_contract": [],
    }


def test_a_rerun_refreshes_drafts_and_bills_no_member_twice(contract):
    book_october(contract.member)
    billing_run(period="2026-10", now=NOW)
    settled(contract.member, OCT.replace(day=20), grid_import_wh=10_000)  # arrives late
    summary = billing_run(period="2026-10", now=NOW)
    assert Invoice.objects.filter(member=contract.member).count() == 1
    assert summary["invoices"] == 1
    assert lines_of(Invoice.objects.get())["residual_supply"] == Decimal("33.00")
    assert BillingRun.objects.count() == 1


def test_a_rerun_with_nothing_new_rewrites_nothing(contract):
    book_october(contract.member)
    billing_run(period="2026-10", now=NOW)
    invoice = Invoice.objects.get()
    lines = list(invoice.lines.values_list("pk", "net"))
    assert billing_run(period="2026-10", now=NOW)["total_gross"] == "70.63"
    assert list(invoice.lines.values_list("pk", "net")) == lines  # the same rows, not rewritten
    settled(contract.member, OCT.replace(day=20), grid_import_wh=10_000)  # arrives late
    billing_run(period="2026-10", now=NOW)
    assert list(invoice.lines.values_list("pk", "net")) != lines


def test_a_rerun_leaves_reviewed_and_issued_invoices_alone(contract):
    from apps.billing.services import invoice_issue, invoice_review

    book_october(contract.member)
    billing_run(period="2026-10", now=NOW)
    invoice = invoice_issue(invoice=invoice_review(invoice=Invoice.objects.get(), actor=None),
                            actor=None, now=NOW)  # fmt: skip
    billing_run(period="2026-10", now=NOW)
    again = Invoice.objects.get()
    assert (again.number, again.gross, again.status) == (invoice.number, invoice.gross, "issued")


def test_a_member_with_several_sites_pays_each_contracts_standing_charge(contract):
    SupplyContractFactory(member=contract.member, tariff=contract.tariff, start=date(2026, 10, 17))
    billing_run(period="2026-10", now=NOW)
    standing = Invoice.objects.get().lines.filter(kind="standing_charge").order_by("position")
    assert [line.net for line in standing] == [Decimal("9.30"), Decimal("4.50")]  # 15 of 31 days


def test_members_owed_money_are_paid_out(contract):
    settled(contract.member, OCT, grid_export_wh=500_000)  # 500 kWh at 0.08 = 40.00 credit
    summary = billing_run(period="2026-10", now=NOW)
    assert summary["total_gross"] == "-28.93"  # 9.30 standing + 1.77 VAT − 40.00
    assert summary["payout_total"] == "28.93" and summary["direct_debit_total"] == "0.00"


def test_dry_run_stores_nothing(contract):
    book_october(contract.member)
    summary = billing_run(period="2026-10", dry_run=True, now=NOW)
    assert summary["invoices"] == 1 and summary["total_gross"] == "70.63"
    assert not Invoice.objects.exists() and not BillingRun.objects.exists()
    assert not Statement.objects.exists()


def test_a_month_that_is_not_over_cannot_be_billed(contract):
    with pytest.raises(ApplicationError, match="not over"):
        billing_run(period="2026-11", now=NOW)
    with pytest.raises(ApplicationError, match="YYYY-MM"):
        billing_run(period="2026-13", now=NOW)


def test_contracts_outside_the_month_are_not_billed(contract):
    SupplyContractFactory(start=date(2026, 11, 1))
    SupplyContractFactory(start=date(2026, 1, 1), end=date(2026, 9, 30))
    assert billing_run(period="2026-10", now=NOW)["invoices"] == 1


def test_late_corrections_of_an_issued_month_reach_the_next_invoice(contract):
    from apps.billing.services import invoices_issue, invoices_review

    book_october(contract.member)
    billing_run(period="2026-10", now=NOW)
    invoices_review(period=date(2026, 10, 1), actor=None)
    invoices_issue(period=date(2026, 10, 1), actor=None, now=NOW)
    october = Invoice.objects.get()
    # A corrected reading re-settles October: the delta is an adjustment line.
    settled(contract.member, OCT, is_adjustment=True, grid_import_wh=5_000,
            reason="corrected reading")  # fmt: skip
    billing_run(period="2026-11", now=datetime(2026, 12, 2, tzinfo=UTC))
    november = Invoice.objects.get(period=date(2026, 11, 1))
    adjustments = {line.kind: (line.description, line.net) for line in
                   november.lines.filter(is_adjustment=True)}  # fmt: skip
    assert adjustments == {
        "residual_supply": ("Adjustment 2026-10: Residual supply from the grid", Decimal("1.50")),
        "network_charge": ("Adjustment 2026-10: Network charges", Decimal("0.45")),
        "levy": ("Adjustment 2026-10: Levies and energy tax", Decimal("0.10")),
    }
    october.refresh_from_db()
    assert october.gross == Decimal("70.63")  # the issued invoice is untouched


def test_command_prints_the_json_summary(contract):
    book_october(contract.member)
    out = StringIO()
    call_command("billing_run", "--period", "2026-10", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["period"] == "2026-10" and summary["invoices"] == 1
    assert set(summary) == {"period", "invoices", "total_net", "total_vat", "total_gross",
                            "direct_debit_total", "payout_total", "sepa_files",
                            "without_contract"}  # fmt: skip
    dry = StringIO()
    call_command("billing_run", "--period", "2026-10", "--dry-run", stdout=dry)
    assert "dry run 2026-10: 1 invoices" in dry.getvalue()
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("billing_run", "--period", "October")


def test_redeemed_rewards_burned_on_chain_are_credited_once_at_the_tariffs_credit_per_token(
    contract,
):
    from apps.incentives.models import Redemption

    version = contract.tariff.versions.get()
    version.reward_credit = Decimal("0.050000")
    version.save()
    burned = Redemption.objects.create(member=contract.member, tokens=40, status="burned",
                                       burned_at=OCT)  # fmt: skip
    Redemption.objects.create(member=contract.member, tokens=7)  # burn not confirmed yet
    billing_run(period="2026-10", now=NOW)
    reward = Invoice.objects.get().lines.get(kind="reward")
    assert (reward.quantity, reward.net, reward.vat_rate) == (
        Decimal("40.000"), Decimal("-2.00"), Decimal("0.0000"),
    )  # fmt: skip
    burned.refresh_from_db()
    assert (burned.status, burned.credited_month) == ("credited", date(2026, 10, 1))
    billing_run(period="2026-10", now=NOW)  # a re-run of the draft keeps the credit, once
    assert Invoice.objects.get().lines.get(kind="reward").net == Decimal("-2.00")


def test_members_with_settlement_but_no_contract_are_listed_not_silently_skipped(contract, client):
    """Staff see, on the run's summary and the Billing page, every member whose settled energy
    no contract bills; nothing of theirs is lost: their lines wait for the next run."""
    from apps.accounts.tests.factories import MemberFactory

    book_october(contract.member)
    stranger = MemberFactory()
    settled(stranger, OCT, bought_wh=5_000, p2p_purchase="1.00")
    former = SupplyContractFactory(start=date(2026, 1, 1), end=date(2026, 9, 30)).member
    settled(former, OCT, grid_import_wh=1_000)  # contract ended before October
    summary = billing_run(period="2026-10", now=NOW)
    assert summary["invoices"] == 1
    listed = {row["member"] for row in summary["without_contract"]}
    assert listed == {stranger.membership_number, former.membership_number}
    assert BillingRun.objects.get().summary["without_contract"] == summary["without_contract"]
    assert not Invoice.objects.filter(member__in=[stranger, former]).exists()
    # Their lines are on no statement or invoice: a contract that starts later bills them.
    SupplyContractFactory(member=stranger, tariff=contract.tariff, start=date(2026, 10, 1))
    again = billing_run(period="2026-10", now=NOW)
    assert {row["member"] for row in again["without_contract"]} == {former.membership_number}
    invoice = Invoice.objects.get(member=stranger)
    assert lines_of(invoice)["p2p_purchase"] == Decimal("1.00")


def test_the_batched_statements_equal_the_member_by_member_ones(contract):
    """The run generates every statement in one pass; its totals are those of
    statement_generate, adjustments of an earlier month included."""
    from django.db import transaction

    from apps.market.services import statement_generate, statements_generate_for_members

    book_october(contract.member)
    settled(contract.member, OCT.replace(month=9), is_adjustment=True, grid_import_wh=3_000,
            bought_wh=1_000, p2p_purchase="0.21", reason="late reading")  # fmt: skip
    with transaction.atomic():
        single = statement_generate(member=contract.member, month=date(2026, 10, 1), now=NOW)
        transaction.set_rollback(True)
    batched = statements_generate_for_members(
        member_ids=[contract.member_id], month=date(2026, 10, 1), now=NOW
    )[contract.member_id]
    assert batched.totals == single.totals
    assert batched.totals["adjustments"] == "0.21" and batched.lines.count() == 3
