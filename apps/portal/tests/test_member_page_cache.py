"""The member dashboard and meter detail page are cached per member until new readings of their
meters land (apps/meters/readings/versions.py): a member sees an interval as soon as it has
been ingested, through the real pipeline and its commit."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from lxml import etree

from apps.meters.tests.factories import MeterFactory, messages_ingest, reading_table_queries
from tests.fixtures.mqtt import Publisher

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

Q = 900
NOW = int(time.time())
EARLIER = (NOW // Q - 3) * Q  # three intervals ago: ended at least half an hour ago


def _ingest(meter, start: int, imp: int, register: int) -> None:
    message = json.dumps(Publisher.reading(meter, start, imp, reg_i=register)).encode()
    assert messages_ingest([("t", message)]).accepted == 1


def _latest(client) -> str:
    page = client.get("/").content.decode()
    node = etree.fromstring(page, etree.HTMLParser()).find(".//p[@id='latest-reading']")
    return " ".join(node.itertext())


class ReadingQueries:
    """The queries of the readings table sent on the primary and on the replica."""

    def __enter__(self):
        self.contexts = [CaptureQueriesContext(connections[a]) for a in ("default", "replica")]
        for c in self.contexts:
            c.__enter__()
        return self

    def __exit__(self, *exc):
        for c in self.contexts:
            c.__exit__(*exc)

    @property
    def sql(self) -> list[str]:
        return [q["sql"] for c in self.contexts for q in reading_table_queries(c.captured_queries)]


def _meter_rows(client, meter) -> list[str]:
    page = client.get(f"/meters/{meter.pk}/").content
    rows = etree.fromstring(page, etree.HTMLParser()).findall(
        ".//table[@id='meter-readings']/tbody/tr"
    )
    return [" ".join(row.itertext()) for row in rows]


def test_a_member_sees_a_new_interval_as_soon_as_it_is_ingested(client):
    meter = MeterFactory(member_since=datetime(2020, 1, 1, tzinfo=UTC))
    client.force_login(meter.member.user)
    _ingest(meter, EARLIER, 1234, register=1234)
    with ReadingQueries() as first:
        assert "1,234 Wh in" in _latest(client)
    assert first.sql  # computed from the readings
    assert len(_meter_rows(client, meter)) == 1
    with ReadingQueries() as again:  # nothing new: served from the cache
        assert "1,234 Wh in" in _latest(client)
        assert len(_meter_rows(client, meter)) == 1
    assert again.sql == []

    _ingest(meter, EARLIER + Q, 4321, register=1234 + 4321)

    latest = _latest(client)
    assert "4,321 Wh in" in latest
    rows = _meter_rows(client, meter)
    assert len(rows) == 2 and "4,321" in rows[0]


def test_another_members_new_data_does_not_recompute_a_members_page(client):
    mine = MeterFactory(member_since=datetime(2020, 1, 1, tzinfo=UTC))
    theirs = MeterFactory(member_since=datetime(2020, 1, 1, tzinfo=UTC))
    _ingest(mine, EARLIER, 500, register=500)
    client.force_login(mine.member.user)
    _latest(client)
    _ingest(theirs, EARLIER, 700, register=700)
    with ReadingQueries() as after:
        assert "500 Wh in" in _latest(client)
    assert after.sql == []
