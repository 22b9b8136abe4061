"""Portal and API: bad input is rejected with field-level errors and nothing half-written;
members see only their own data; staff pages are staff only."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Member
from apps.accounts.tests.factories import MemberFactory
from apps.audit.models import AuditLog
from apps.core.intervals import INTERVAL, floor_interval
from apps.market.models import Order, TradingPreference
from apps.market.tests.factories import (
    ConnectionPointFactory,
    MeterFactory,
    TariffFactory,
    make_issued_statement,
    make_trade,
)
from apps.market.tests.isolation import ISOLATION_CASES

pytestmark = pytest.mark.django_db


@pytest.fixture
def trader(client):
    TariffFactory()
    member = MemberFactory()
    ConnectionPointFactory(member=member)
    client.force_login(member.user)
    return member


def _next_interval(k: int = 2):
    return floor_interval(timezone.now()) + INTERVAL * k


def test_api_order_is_placed_and_listed(client, trader):
    url = reverse("market-api:orders")
    start = _next_interval()
    response = client.post(
        url,
        {"interval_start": start.isoformat(), "side": "bid", "wh": 800, "limit_price": "0.25"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "open"
    listed = client.get(url).json()
    assert [o["wh"] for o in listed] == [800]
    # A second order for the same interval replaces the first.
    client.post(
        url,
        {"interval_start": start.isoformat(), "side": "offer", "wh": 300, "limit_price": "0.12"},
        content_type="application/json",
    )
    statuses = sorted(Order.objects.filter(member=trader).values_list("status", flat=True))
    assert statuses == ["cancelled", "open"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"wh": 0}, "wh"),
        ({"wh": -5}, "wh"),
        ({"wh": 10**9}, "wh"),
        ({"limit_price": "0.01"}, "limit_price"),  # below the feed-in price
        ({"limit_price": "5"}, "limit_price"),  # above the retail price
        ({"interval_start": "past"}, "interval_start"),  # gate closed
        ({"interval_start": "unaligned"}, "interval_start"),
    ],
)
def test_api_bad_orders_get_field_errors_and_write_nothing(client, trader, payload, field):
    data = {
        "interval_start": _next_interval().isoformat(),
        "side": "bid",
        "wh": 500,
        "limit_price": "0.25",
    }
    data.update(payload)
    if data["interval_start"] == "past":
        data["interval_start"] = (floor_interval(timezone.now()) - INTERVAL).isoformat()
    if data["interval_start"] == "unaligned":
        data["interval_start"] = (_next_interval() + timedelta(minutes=7)).isoformat()
    audit_before = AuditLog.objects.count()
    response = client.post(reverse("market-api:orders"), data, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["extra"]
    assert not Order.objects.exists()
    assert AuditLog.objects.count() == audit_before


def test_api_type_errors_are_field_level(client, trader):
    response = client.post(
        reverse("market-api:orders"),
        {"interval_start": "tomorrow", "side": "hold", "wh": "many", "limit_price": "x"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert set(response.json()) >= {"interval_start", "side", "wh", "limit_price"}


def test_inactive_or_unconnected_members_cannot_trade(client):
    TariffFactory()
    suspended = MemberFactory(status=Member.Status.SUSPENDED)
    ConnectionPointFactory(member=suspended)
    client.force_login(suspended.user)
    data = {"interval_start": _next_interval().isoformat(), "side": "bid", "wh": 100,
            "limit_price": "0.2"}  # fmt: skip
    response = client.post(reverse("market-api:orders"), data, content_type="application/json")
    assert response.status_code == 400 and "member" in response.json()["extra"]
    unconnected = MemberFactory()
    client.force_login(unconnected.user)
    response = client.post(reverse("market-api:orders"), data, content_type="application/json")
    assert response.status_code == 400 and "member" in response.json()["extra"]
    assert not Order.objects.exists()


def _opted_in(member, selectable=True):
    TradingPreference.objects.create(
        member=member, max_buy_price="0.25", min_sell_price="0.10", partner_selectable=selectable
    )
    return member


def test_contradictory_preferences_are_rejected(client, trader):
    consumer = _opted_in(MemberFactory())  # no generating meters
    url = reverse("market-api:preferences")
    base = {"max_buy_price": "0.25", "min_sell_price": "0.10"}
    bad = [
        ({"preferred_partners": [trader.pk]}, "preferred_partners"),
        ({"preferred_partners": [999_999]}, "preferred_partners"),
        ({"max_buy_price": "0.50"}, "max_buy_price"),
        ({"battery_reserve_percent": 140}, "battery_reserve_percent"),
    ]
    for extra, field in bad:
        response = client.put(url, {**base, **extra}, content_type="application/json")
        assert response.status_code == 400, extra
        assert field in response.json()["extra"], (extra, response.json())
    assert not TradingPreference.objects.filter(member=trader).exists()
    producer = _opted_in(MemberFactory())
    MeterFactory(member=producer, asset_kind="pv")
    ok = client.put(
        url, {**base, "green_only": True, "preferred_partners": [producer.pk, consumer.pk]},
        content_type="application/json",
    )  # fmt: skip
    assert ok.status_code == 200, ok.content
    assert sorted(ok.json()["preferred_partners"]) == sorted([producer.pk, consumer.pk])


def test_partners_are_opted_in_active_members_and_nothing_else_leaks(client, trader):
    """Data minimisation: the preferences API lists only active members who opted to be
    selectable, by membership number, and its errors reveal neither who is inactive, unknown or
    not opted in, nor who has PV."""
    from apps.accounts.models import Member

    chosen = _opted_in(MemberFactory())
    MeterFactory(member=chosen, asset_kind="pv")
    shy = _opted_in(MemberFactory(), selectable=False)
    gone = _opted_in(MemberFactory())
    gone.transition_to(Member.Status.LEFT, actor=None)
    url = reverse("market-api:preferences")
    base = {"max_buy_price": "0.25", "min_sell_price": "0.10"}
    client.put(url, base, content_type="application/json")
    listing = client.get(url).json()["selectable_partners"]
    assert listing == [{"id": chosen.pk, "membership_number": chosen.membership_number}]
    body = client.get(url).content.decode().lower()
    assert "pv" not in body and "status" not in body
    for other in (shy, gone):
        response = client.put(
            url, {**base, "preferred_partners": [other.pk]}, content_type="application/json"
        )
        assert response.status_code == 400
        text = response.content.decode()
        assert other.membership_number not in text
        assert "active" not in text.lower() and "renewable" not in text.lower()
    # A green-only buyer learns nothing about a partner's assets from the answer either.
    consumer = _opted_in(MemberFactory())
    response = client.put(
        url, {**base, "green_only": True, "preferred_partners": [consumer.pk]},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 200
    page = client.get(reverse("market:trading")).content.decode()
    assert chosen.membership_number in page
    assert shy.membership_number not in page and gone.membership_number not in page


def test_portal_forms_show_field_errors(client, trader):
    response = client.post(
        reverse("market:trading"),
        {"max_buy_price": "0.25", "min_sell_price": "0.01", "battery_reserve_percent": 0},
    )
    assert response.status_code == 400
    assert response.context["pref_form"].errors["min_sell_price"]
    assert not TradingPreference.objects.exists()
    start = _next_interval()
    response = client.post(
        reverse("market:order_create"),
        {"interval_start": start.isoformat(), "side": "bid", "wh": -1, "limit_price": "0.2"},
    )
    assert response.status_code == 400
    assert response.context["order_form"].errors["wh"]
    response = client.post(
        reverse("market:order_create"),
        {"interval_start": start.isoformat(), "side": "bid", "wh": 400, "limit_price": "0.2"},
    )
    assert response.status_code == 302
    page = client.get(reverse("market:trading"))
    assert page.status_code == 200
    assert b"400 Wh" in page.content


def test_member_sees_only_own_trades_and_statements(client):
    TariffFactory()
    me, other = MemberFactory(), MemberFactory()
    mine, theirs = make_trade(me), make_trade(other)
    make_issued_statement(other)
    client.force_login(me.user)
    ids = [t["id"] for t in client.get(reverse("market-api:trades")).json()]
    assert mine.pk in ids and theirs.pk not in ids
    assert client.get(reverse("market-api:statements")).json() == []
    assert client.get(reverse("market:trade_verify", args=[theirs.pk])).status_code == 404
    assert (
        client.get(reverse("market-api:order_detail", args=[theirs.buyer_order_id])).status_code
        == 404
    )


def test_isolation_cases_cover_the_parametrised_member_urls():
    names = {c.url_name for c in ISOLATION_CASES}
    assert {"market:trade_verify", "market:statement_pdf", "market-api:order_detail"} <= names


def test_staff_pages_are_staff_only(staff_client):
    from django.test import Client

    member_client = Client()
    member_client.force_login(MemberFactory().user)
    assert member_client.get(reverse("market:monitor")).status_code == 403
    assert member_client.post(reverse("market:run_anchor", args=[1])).status_code == 403
    TariffFactory()
    make_trade(MemberFactory(), settled=True)
    assert staff_client.get(reverse("market:monitor")).status_code == 200
    page = staff_client.get(reverse("market:runs"))
    assert page.status_code == 200 and b"Approve and anchor" in page.content


def test_statement_pdf_and_csv_download(client):
    me = MemberFactory()
    statement = make_issued_statement(me)
    client.force_login(me.user)
    pdf = client.get(reverse("market:statement_pdf", args=[statement.pk]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    csv = client.get(reverse("market:statement_csv", args=[statement.pk]))
    assert csv.status_code == 200 and b"total,total,12.34" in csv.content


def test_savings_are_computed_from_lines(client, trader):
    from apps.market.selectors import member_savings

    assert member_savings(member=trader, since=timezone.now() - timedelta(days=30)) == {
        "paid": Decimal(0),
        "grid_only": Decimal(0),
        "saved": Decimal(0),
    }


def test_trading_page_queries_do_not_grow_with_trades(
    client, trader, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_trade(trader)
    with CaptureQueriesContext(connection) as first:
        assert client.get(reverse("market:trading")).status_code == 200
    for _ in range(5):
        make_trade(trader)
    with django_assert_max_num_queries(len(first.captured_queries)):
        page = client.get(reverse("market:trading"))
    assert page.content.count(b"/verify/") == 6
