"""The member's market pages (trading, statements, the API lists the load bench hits) cost a
fixed number of queries, whatever the number of trades, statements and selectable partners: no
query per row. The ceilings are the counts measured when they were set; a page that grows past
one has gained a query per request for every member."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.tests.factories import MemberFactory
from apps.market.models import TradingPreference
from apps.market.tests.factories import (
    ConnectionPointFactory,
    TariffFactory,
    make_issued_statement,
    make_trade,
)

pytestmark = pytest.mark.django_db

CEILINGS = {
    "market:trading": 11,
    "market:statements": 5,
    "meters-api:my_meters": 4,
    "market-api:orders": 4,
    "market-api:trades": 4,
    "market-api:statements": 4,
}


@pytest.fixture
def trader(client):
    TariffFactory()
    member = MemberFactory()
    ConnectionPointFactory(member=member)
    client.force_login(member.user)
    return member


def _partner() -> None:
    TradingPreference.objects.create(
        member=MemberFactory(), max_buy_price="0.3", min_sell_price="0.1", partner_selectable=True
    )


def _queries(client, name: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(name))
    assert response.status_code == 200, (name, response.status_code)
    return len(queries)


def test_member_pages_cost_the_same_queries_with_more_rows(client, trader):
    make_trade(trader)
    make_issued_statement(trader)
    _partner()
    for name in CEILINGS:  # once-per-session reads (site settings, navigation) out of the way
        _queries(client, name)
    few = {name: _queries(client, name) for name in CEILINGS}
    for _ in range(4):
        make_trade(trader)
        _partner()
    many = {name: _queries(client, name) for name in CEILINGS}
    assert many == few
    assert {n: c for n, c in many.items() if c > CEILINGS[n]} == {}


def test_trading_page_lists_every_selectable_partner_once_and_keeps_the_choice(client, trader):
    for _ in range(3):
        _partner()
    hidden = MemberFactory()  # did not opt in: never listed
    chosen = TradingPreference.objects.filter(partner_selectable=True).first().member
    pref = TradingPreference.objects.create(member=trader, max_buy_price="0.3",
                                            min_sell_price="0.1")  # fmt: skip
    pref.preferred_partners.set([chosen])

    html = client.get(reverse("market:trading")).content.decode()
    select = html.split('name="preferred_partners"', 1)[1].split("</select>", 1)[0]
    assert select.count("<option ") == 3
    assert f'<option value="{chosen.pk}" selected>{chosen.membership_number}</option>' in select
    assert hidden.membership_number not in select
    assert f'value="{trader.pk}"' not in select
