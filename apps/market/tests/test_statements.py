"""Statement periods and totals (pure parts)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from apps.market.models import SettlementLine
from apps.market.services.statements import month_bounds, statement_totals


def test_statement_months_follow_the_cooperative_time_zone_across_dst(settings):
    settings.COOPERATIVE_TIME_ZONE = "Europe/Berlin"
    start, end = month_bounds(date(2026, 3, 1))  # DST starts 29 March: one hour shorter
    assert (start.hour, end.hour) == (23, 22)  # local midnight in UTC, CET then CEST
    assert (end - start) / timedelta(minutes=15) == 31 * 96 - 4
    start, end = month_bounds(date(2026, 10, 1))  # DST ends 25 October: one hour longer
    assert (end - start) / timedelta(minutes=15) == 31 * 96 + 4
    start, end = month_bounds(date(2026, 12, 1))
    assert end == month_bounds(date(2027, 1, 1))[0]


def test_totals_round_once_and_apply_vat_to_charges_only():
    lines = [
        SettlementLine(
            import_wh=1000,
            p2p_purchase=Decimal("0.123456"),
            network_fee=Decimal("0.010004"),
            grid_import=Decimal("0.100001"),
            grid_only_charge=Decimal("0.32"),
        ),  # fmt: skip
        SettlementLine(
            export_wh=500,
            p2p_sale=Decimal("-0.05"),
            grid_export=Decimal("-0.004"),
            grid_only_credit=Decimal("-0.04"),
        ),  # fmt: skip
        SettlementLine(is_adjustment=True, grid_import=Decimal("0.02"), reason="late data"),
    ]
    totals = statement_totals(lines=lines, vat_rate=Decimal("0.19"))
    # charges 0.123456 + 0.010004 + 0.120001 = 0.253461 → 0.25; VAT 19 % → 0.05
    assert totals["charges"] == "0.25" and totals["vat"] == "0.05"
    assert totals["credits"] == "-0.05"  # -0.054 → -0.05
    assert totals["total"] == "0.25"
    assert totals["adjustments"] == "0.02"
    # Grid-only: 0.32 + VAT 0.06 − 0.04 = 0.34; savings 0.09.
    assert totals["grid_only_total"] == "0.34" and totals["savings"] == "0.09"
    assert totals["import_wh"] == "1000" and totals["export_wh"] == "500"
