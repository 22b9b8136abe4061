"""Acceptance 3 (live part): the member dashboard updates without reload when a reading is
ingested — real Chromium, daphne (HTTP + WebSocket), Redis channel layer, PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from apps.accounts.tests.factories import DEFAULT_PASSWORD, MemberFactory, UserFactory
from apps.meters.readings.pipeline import raw_batch_store, reading_batch_ingest
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.mqtt import Publisher

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Q = 900


def test_dashboard_updates_live_when_a_reading_is_ingested(asgi_live_server, page):
    member = MemberFactory(user=UserFactory(), legal_name="Live Lena")
    meter = MeterFactory(member=member)
    neighbour = MeterFactory()  # another member's meter counts in the community balance only
    now = int(time.time())
    last = now - now % Q - Q  # the last complete interval
    start = last - 8 * Q
    readings_backfill(
        rows=[BackfillRow(meter_id=m.pk, interval_start=datetime.fromtimestamp(start + i * Q, UTC),
                          import_wh=100, export_wh=0, register_import_wh=100 * (i + 1))
              for m in (meter, neighbour) for i in range(8)],
        source="backfill",
    )  # fmt: skip

    page.goto(f"{asgi_live_server.url}/accounts/login/")
    page.fill("input[name=login]", member.user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{asgi_live_server.url}/")
    page.wait_for_selector("#live-balance[data-state=live]", timeout=15_000)
    before = datetime.fromtimestamp(last - Q, UTC).isoformat()
    assert page.locator("#live-latest").get_attribute("data-interval") == before

    # A new signed reading arrives through the ingest pipeline (the bridge's service).
    docs = [Publisher.reading(meter, last, 321, reg_i=800 + 321),
            Publisher.reading(neighbour, last, 4000, reg_i=800 + 4000)]  # fmt: skip
    batch = raw_batch_store(messages=[("t", json.dumps(d).encode()) for d in docs])
    reading_batch_ingest(batch_id=batch)

    expected = datetime.fromtimestamp(last, UTC).isoformat()
    page.wait_for_selector(f"#live-latest[data-interval='{expected}']", timeout=15_000)
    assert "321 Wh in" in page.locator("#live-latest").inner_text()
    page.wait_for_function(
        "document.querySelector('#live-consumption') && "
        "document.querySelector('#live-consumption').textContent.includes('4,321')",
        timeout=15_000,
    )
    assert page.js_errors == []
    assert datetime.now(tz=UTC) - datetime.fromtimestamp(now, UTC) < timedelta(minutes=5)
