"""Demo data of billing (called by the demo loader, see docs/demo.md): a supply tariff, a
contract and a SEPA mandate for every demo member, and one complete billed month — the last
month that is over — with issued invoices, the direct-debit and payout files and an imported
bank statement that pays every collection but one, which comes back as a return with a fee.
Idempotent: every step only does what is still missing."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from schwifty import IBAN

from apps.billing import services
from apps.billing.models import (
    BankStatement,
    Mandate,
    PaymentInstruction,
    SepaFile,
    SupplyContract,
    SupplyTariff,
    SupplyTariffVersion,
)

logger = logging.getLogger(__name__)

RETURN_FEE = Decimal("3.00")


def _tariff() -> SupplyTariff:
    tariff, created = SupplyTariff.objects.get_or_create(
        code="coop-home", defaults={"name": "Cooperative home supply"}
    )
    if created:
        SupplyTariffVersion.objects.create(
            tariff=tariff,
            valid_from=date(2024, 1, 1),
            energy_price=Decimal("0.310000"),
            feed_in_price=Decimal("0.080000"),
            network_charge=Decimal("0.095000"),
            levy=Decimal("0.025000"),
            standing_charge=Decimal("9.90"),
            vat_rate=Decimal("0.19"),
            reward_credit=Decimal("0.010000"),
        )
    return tariff


def _demo_camt(*, message_id: str, collected: list, returned, day: date) -> bytes:
    """The bank's camt.053 for the demo month: the collection booked as one batch, the return."""
    own = settings.BILLING_SELLER["iban"]

    def tx(instruction, extra: str = "") -> str:
        return (
            f"<TxDtls><Refs><EndToEndId>{instruction.end_to_end_id}</EndToEndId></Refs>"
            f'<AmtDtls><TxAmt><Amt Ccy="EUR">{instruction.amount}</Amt></TxAmt></AmtDtls>'
            f"{extra}</TxDtls>"
        )

    def entry(amount: Decimal, credit: bool, details: str) -> str:
        return (
            f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{"CRDT" if credit else "DBIT"}'
            f"</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>{day}</Dt></BookgDt>"
            f"<NtryDtls>{details}</NtryDtls></Ntry>"
        )

    entries = entry(sum((i.amount for i in collected), Decimal(0)), True,
                    "".join(tx(i) for i in collected))  # fmt: skip
    if returned is not None:
        fee = f'<Chrgs><Amt Ccy="EUR">{RETURN_FEE}</Amt></Chrgs>'
        reason = "<RtrInf><Rsn><Cd>AM04</Cd></Rsn></RtrInf>"
        entries += entry(returned.amount + RETURN_FEE, False, tx(returned, fee + reason))
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Document '
        'xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>{day}T06:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{message_id}</Id><Acct><Id><IBAN>{own}</IBAN></Id></Acct>{entries}</Stmt>"
        "</BkToCstmrStmt></Document>"
    ).encode()


def load(context) -> None:
    tariff = _tariff()
    have = set(SupplyContract.objects.values_list("member_id", flat=True))
    mandates = set(Mandate.objects.filter(status="active").values_list("member_id", flat=True))
    for n, member in enumerate(context.members, start=1):
        if member.pk not in have:
            SupplyContract.objects.create(
                reference=f"SC-{member.membership_number}",
                member=member,
                connection_point=context.connection_points.get(member.pk),
                tariff=tariff,
                start=date(2024, 1, 1),
                payment_method="transfer" if n % 10 == 0 else "direct_debit",
            )
            context.created["billing.supplycontract"] = (
                context.created.get("billing.supplycontract", 0) + 1
            )
        if member.pk not in mandates:
            services.mandate_create(
                member=member,
                reference=f"MNDT-{member.membership_number}",
                signed_on=date(2024, 1, 1),
                account_holder=member.legal_name,
                iban=str(IBAN.generate("DE", bank_code="37040044", account_code=f"{n:010d}")),
                actor="demo",
            )
    today = context.now.astimezone(ZoneInfo(settings.COOPERATIVE_TIME_ZONE)).date()
    period = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    summary = services.billing_run(period=period, actor="demo", now=context.now)
    services.invoices_review(period=period, actor="demo")
    issued = services.invoices_issue(period=period, actor="demo", now=context.now)
    if issued:
        context.created["billing.invoice"] = issued
    if not SepaFile.objects.filter(period=period).exists():  # later files are staff decisions
        services.sepa_files_create(period=period, actor="demo", now=context.now)
    message_id = f"DEMO-CAMT-{period:%Y-%m}"
    if not BankStatement.objects.filter(message_id=message_id).exists():
        collected = list(
            PaymentInstruction.objects.filter(
                sepa_file__period=period,
                sepa_file__kind=SepaFile.Kind.COLLECTION,
                status=PaymentInstruction.Status.PENDING,
            ).order_by("id")
        )
        if collected:
            services.bank_statement_import(
                content=_demo_camt(
                    message_id=message_id, collected=collected, returned=collected[0], day=today
                ),  # fmt: skip
                actor="demo",
                now=context.now,
            )
    context.extra["billing_period"] = period
    logger.info("demo billing %s: %s", summary["period"], summary)
