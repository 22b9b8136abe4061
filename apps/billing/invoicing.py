"""Invoice lines and VAT from settled energy and a tariff: a pure engine (no Django).

Settlement (apps.market) has already priced the peer-to-peer energy at cleared prices; billing
takes those amounts as they are and prices what settlement left to the supplier at the member's
supply tariff: residual grid supply, unsold export, network charges, levies and the standing
charge. Rewards are credited at the tariff's credit per token.

Rounding follows EN 16931: each line net is rounded to cents; per VAT rate the base is the sum of
its line nets and the VAT is the base times the rate, rounded once; the gross is net + VAT.
Charges carry the tariff's VAT rate, credits to the member (energy sold, rewards) 0 %.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
RATE = Decimal("0.0001")
ZERO = Decimal("0")


def cents(value: Decimal) -> Decimal:
    """Rounded half up to cents; never a negative zero."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP) + ZERO


@dataclass(frozen=True, slots=True)
class Prices:
    energy_price: Decimal
    feed_in_price: Decimal
    network_charge: Decimal
    levy: Decimal
    standing_charge: Decimal
    vat_rate: Decimal
    reward_credit: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class SettledEnergy:
    """A member's settled energy and P2P amounts of one month (positive amounts: member pays)."""

    month: date
    is_adjustment: bool
    grid_import_wh: int = 0
    grid_export_wh: int = 0
    bought_wh: int = 0
    sold_wh: int = 0
    p2p_purchase: Decimal = ZERO
    p2p_sale: Decimal = ZERO
    network_fee: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class StandingPeriod:
    """A contract's share of the month: `days` of `month_days` supplied."""

    contract: str
    days: int
    month_days: int


@dataclass(frozen=True, slots=True)
class Line:
    kind: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net: Decimal
    vat_rate: Decimal
    is_adjustment: bool = False


@dataclass(frozen=True, slots=True)
class VatGroup:
    rate: Decimal
    base: Decimal
    vat: Decimal


@dataclass(frozen=True, slots=True)
class Totals:
    net: Decimal
    vat: Decimal
    gross: Decimal
    vat_groups: tuple[VatGroup, ...]


def _kwh(wh: int) -> Decimal:
    return (Decimal(wh) / 1000).quantize(Decimal("0.001"))


def _unit(amount: Decimal, wh: int) -> Decimal:
    return (amount * 1000 / wh).quantize(Decimal("0.000001")) if wh else ZERO


def energy_lines(*, energy: SettledEnergy, prices: Prices) -> list[Line]:
    """The lines of one month's settled energy (a regular month or an adjustment of one)."""
    adj = energy.is_adjustment
    prefix = f"Adjustment {energy.month:%Y-%m}: " if adj else ""
    rate = prices.vat_rate
    consumed_wh = energy.grid_import_wh + energy.bought_wh
    rows = [
        ("p2p_purchase", "Energy bought from members", energy.bought_wh,
         _unit(energy.p2p_purchase, energy.bought_wh), energy.p2p_purchase, rate),
        ("p2p_network_fee", "Network fee on energy bought from members", energy.bought_wh,
         _unit(energy.network_fee, energy.bought_wh), energy.network_fee, rate),
        ("p2p_sale", "Energy sold to members", energy.sold_wh,
         _unit(-energy.p2p_sale, energy.sold_wh), energy.p2p_sale, ZERO),
        ("residual_supply", "Residual supply from the grid", energy.grid_import_wh,
         prices.energy_price, prices.energy_price * energy.grid_import_wh / 1000, rate),
        ("network_charge", "Network charges", energy.grid_import_wh,
         prices.network_charge, prices.network_charge * energy.grid_import_wh / 1000, rate),
        ("levy", "Levies and energy tax", consumed_wh,
         prices.levy, prices.levy * consumed_wh / 1000, rate),
        ("unsold_export", "Unsold export to the grid", energy.grid_export_wh,
         prices.feed_in_price, -prices.feed_in_price * energy.grid_export_wh / 1000, ZERO),
    ]  # fmt: skip
    lines = []
    for kind, text, wh, unit_price, amount, vat_rate in rows:
        net = cents(amount)
        if wh == 0 and net == 0:
            continue
        lines.append(
            Line(
                kind=kind,
                description=prefix + text,
                quantity=_kwh(wh),
                unit="kWh",
                unit_price=unit_price,
                net=net,
                vat_rate=vat_rate,
                is_adjustment=adj,
            )
        )
    return lines


def standing_lines(*, periods: list[StandingPeriod], prices: Prices) -> list[Line]:
    lines = []
    for p in periods:
        share = Decimal(p.days) / Decimal(p.month_days)
        lines.append(
            Line(
                kind="standing_charge",
                description=f"Standing charge, contract {p.contract} ({p.days}/{p.month_days} d)",
                quantity=share.quantize(Decimal("0.001")),
                unit="month",
                unit_price=prices.standing_charge,
                net=cents(prices.standing_charge * share),
                vat_rate=prices.vat_rate,
            )
        )
    return lines


def reward_lines(*, tokens: int, prices: Prices) -> list[Line]:
    if tokens <= 0 or prices.reward_credit <= 0:
        return []
    return [
        Line(
            kind="reward",
            description="Rewards credited",
            quantity=Decimal(tokens),
            unit="token",
            unit_price=prices.reward_credit,
            net=cents(-prices.reward_credit * tokens),
            vat_rate=ZERO,
        )
    ]


@dataclass(frozen=True, slots=True)
class PlantCredit:
    """A shareholder's part of one month of a shared plant."""

    asset: str
    mode: str  # "revenue_share" or "generation_kwh"
    wh: int
    amount_cents: int


def shared_plant_lines(*, credits: list[PlantCredit], prices: Prices) -> list[Line]:
    """Revenue share: the allocated cents as a credit (0 % VAT, like energy sold). Generation
    kWh: the allocated kWh deducted from the member's consumption, valued at their tariff's
    energy price (at the tariff's VAT rate, as the supply it replaces)."""
    lines = []
    for c in credits:
        if c.mode == "generation_kwh":
            if c.wh <= 0:
                continue
            lines.append(
                Line(
                    kind="shared_plant_kwh",
                    description=f"Generation kWh from {c.asset}",
                    quantity=_kwh(c.wh),
                    unit="kWh",
                    unit_price=prices.energy_price,
                    net=cents(-prices.energy_price * c.wh / 1000),
                    vat_rate=prices.vat_rate,
                )
            )
        elif c.amount_cents > 0:
            lines.append(
                Line(
                    kind="shared_plant_revenue",
                    description=f"Your share of {c.asset}'s revenue",
                    quantity=_kwh(c.wh),
                    unit="kWh",
                    unit_price=_unit(Decimal(c.amount_cents) / 100, c.wh),
                    net=cents(Decimal(-c.amount_cents) / 100),
                    vat_rate=ZERO,
                )
            )
    return lines


def totals(lines: list[Line]) -> Totals:
    """Net, VAT per rate (base = sum of line nets, VAT rounded once per rate) and gross."""
    bases: dict[Decimal, Decimal] = defaultdict(Decimal)
    for line in lines:
        bases[Decimal(line.vat_rate).quantize(RATE)] += line.net
    groups = tuple(
        VatGroup(rate=rate, base=base, vat=cents(base * rate))
        for rate, base in sorted(bases.items(), reverse=True)
    )
    net = sum((g.base for g in groups), ZERO)
    vat = sum((g.vat for g in groups), ZERO)
    return Totals(net=net, vat=vat, gross=net + vat, vat_groups=groups)


def _iso7064_digits(text: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in text))


def creditor_reference(number: str) -> str:
    """The ISO 11649 structured creditor reference (RF…) of an invoice number, e.g.
    F2026-000001 → RF…F2026000001: transfer payers quote it, the bank passes it back."""
    body = "".join(ch for ch in number.upper() if ch.isalnum())
    check = 98 - _iso7064_digits(body + "RF00") % 97
    return f"RF{check:02d}{body}"


def number_from_creditor_reference(reference: str) -> str | None:
    """The invoice number an RF reference was made from, or None if it is not a valid one."""
    ref = "".join(reference.split()).upper()
    if not (ref.startswith("RF") and len(ref) == 15 and ref[2:4].isdigit()):
        return None
    if _iso7064_digits(ref[4:] + ref[:4]) % 97 != 1:
        return None
    body = ref[4:]
    return f"{body[:5]}-{body[5:]}"
