"""Member pages and exports (own data only), the HTTP gateway, admin actions, staff page,
device sync, the Celery task path and the live WebSocket consumer."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client, TestCase
from django.urls import reverse
from lxml import etree

from apps.meters.models import Meter, Quarantine, RawBatch, Reading
from apps.meters.readings.pipeline import raw_batch_store
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory, gateway_auth, new_device_key
from tests.fixtures.mqtt import Publisher

pytestmark = pytest.mark.django_db

Q = 900
NOW = int(time.time())
T0 = (NOW // 86400 - 2) * 86400  # midnight UTC two days ago
ATOM = "{http://www.w3.org/2005/Atom}"
ESPI = "{http://naesb.org/espi}"


def _history(meter, n=8, start=T0):
    readings_backfill(
        rows=[
            BackfillRow(meter_id=meter.pk,
                        interval_start=datetime.fromtimestamp(start + i * Q, UTC),
                        import_wh=100 + i, export_wh=i % 2, quality=0 if i != 3 else 9)
            for i in range(n)
        ],
        source="backfill",
    )  # fmt: skip


def test_green_button_export_has_the_espi_structure(member, member_client):
    meter = MeterFactory(member=member)
    _history(meter)
    other = MeterFactory()
    _history(other)
    start = datetime.fromtimestamp(T0, UTC).date().isoformat()
    response = member_client.get(
        reverse("meters:export_green_button") + f"?start={start}&end={start}"
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/xml"
    root = etree.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    contents = [c[0] for c in root.iter(f"{ATOM}content")]
    kinds = [c.tag.replace(ESPI, "") for c in contents]
    assert kinds == ["UsagePoint", "MeterReading", "ReadingType", "IntervalBlock",
                     "MeterReading", "ReadingType", "IntervalBlock"]  # fmt: skip
    reading_type = contents[2]
    assert reading_type.findtext(f"{ESPI}uom") == "72"  # Wh
    assert reading_type.findtext(f"{ESPI}flowDirection") == "1"
    assert reading_type.findtext(f"{ESPI}intervalLength") == "900"
    block = contents[3]
    readings = block.findall(f"{ESPI}IntervalReading")
    assert len(readings) == 8
    # schema order inside IntervalReading: ReadingQuality, timePeriod, value
    assert [c.tag.replace(ESPI, "") for c in readings[3]] == [
        "ReadingQuality",
        "timePeriod",
        "value",
    ]
    assert readings[3].findtext(f"{ESPI}ReadingQuality/{ESPI}quality") == "9"
    assert readings[3].findtext(f"{ESPI}value") == "103"
    assert readings[0].findtext(f"{ESPI}timePeriod/{ESPI}start") == str(T0)
    export_block = contents[6]
    assert export_block.findall(f"{ESPI}IntervalReading")[1].findtext(f"{ESPI}value") == "1"
    assert other.serial.encode() not in response.content  # only the member's own meters


def test_csv_export_and_meters_page_show_only_own_data(member, member_client, other_member):
    meter = MeterFactory(member=member)
    _history(meter, start=(NOW // Q - 10) * Q)
    foreign = MeterFactory(member=other_member)
    _history(foreign, start=(NOW // Q - 10) * Q)
    csv_text = member_client.get(reverse("meters:export_csv")).content.decode()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("meter,interval_start_utc")
    assert len(lines) == 9 and all(line.startswith(meter.serial) for line in lines[1:])
    page = member_client.get(reverse("meters:index")).content.decode()
    assert meter.serial in page and foreign.serial not in page
    assert "9 estimated using linear interpolation" in page
    assert member_client.get(reverse("meters:meter_detail", args=[foreign.pk])).status_code == 404
    assert member_client.get(reverse("meters:meter_detail", args=[meter.pk])).status_code == 200
    api = member_client.get(reverse("meters-api:my_meters")).json()
    assert [m["serial"] for m in api] == [meter.serial]


def test_meter_detail_pages_through_all_48_hours_of_that_meter_for_a_member_with_many_meters(
    member, member_client
):
    """The page read the member's last 48 h over every meter (at most 500 rows) and kept one
    meter's: with three meters (570 rows) each page lost a share of its intervals. It now shows
    6 hours (24 intervals) a page, newest first, and its pages together hold all 48 hours."""
    start = (NOW // Q - 190) * Q  # 47.5 hours: all inside the page's 48
    meters = [MeterFactory(member=member) for _ in range(3)]
    for meter in meters:
        _history(meter, n=190, start=start)
    url = reverse("meters:meter_detail", args=[meters[1].pk])
    seen: list[str] = []
    page, pages = 1, 0
    while page is not None:
        tree = etree.fromstring(member_client.get(f"{url}?page={page}").content, etree.HTMLParser())
        rows = tree.findall(".//table[@id='meter-readings']/tbody/tr")
        texts = [row.findtext("td") for row in rows]
        assert len(texts) <= 24
        seen += [t for t in texts if t]  # "No readings in these hours." has no date cell text
        older = tree.find(".//a[@id='readings-older']")
        page = int(older.get("href").split("=")[1]) if older is not None else None
        pages += 1
    assert pages == 8
    assert len(seen) == 190 == len(set(seen))
    assert seen == sorted(seen, reverse=True)  # newest first, across pages


def test_http_gateway_applies_the_same_validation(client):
    meter = MeterFactory()
    good = Publisher.reading(meter, T0, 120)
    batch = {"v": 1, "readings": [good, {**good, "import_wh": 121}, {**good, "sig": "0x00"}]}
    auth = gateway_auth()
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(reverse("meters-api:gateway_ingest"), data=json.dumps(batch),
                               content_type="application/json", **auth)  # fmt: skip
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 2)
    assert body["rejects_by_reason"] == {"bad_signature": 2}
    assert Reading.objects.get(meter=meter).import_wh == 120
    assert RawBatch.objects.get(pk=body["batch"]).source == "http"
    bad = client.post(reverse("meters-api:gateway_ingest"), data=b"{nope",
                      content_type="application/json", **auth)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["rejects_by_reason"] == {"malformed": 1}


def test_key_registered_late_then_quarantine_reprocessed_from_admin(staff_client):
    meter = MeterFactory(key=False)  # no key registered yet
    private, public_hex, address = new_device_key()
    doc = Publisher.reading(meter, T0, 77, key=private)
    with TestCase.captureOnCommitCallbacks(execute=True):
        client_response = staff_client.post(
            reverse("meters-api:gateway_ingest"), data=json.dumps(doc),
            content_type="application/json", **gateway_auth(),
        )  # fmt: skip
    assert client_response.json()["rejects_by_reason"] == {"bad_signature": 1}
    item = Quarantine.objects.get()
    change = reverse("admin:meters_meter_change", args=[meter.pk])
    form = staff_client.get(change)
    assert form.status_code == 200
    data = {
        "serial": meter.serial, "member": meter.member_id, "asset_kind": meter.asset_kind,
        "direction": meter.direction, "interval_seconds": 900, "multiplier": 1,
        "capacity_w": meter.capacity_w, "active_from_0": "2020-01-01", "active_from_1": "00:00:00",
        "config_version": meter.config_version, "new_public_key": public_hex,
    }  # fmt: skip
    response = staff_client.post(change, data)
    assert response.status_code == 302, response.content[:2000]
    meter.refresh_from_db()
    assert meter.address == address and meter.config_version == 2
    response = staff_client.post(
        reverse("admin:meters_quarantine_changelist"),
        {"action": "reprocess", "_selected_action": [item.pk]},
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == Quarantine.Status.REPROCESSED
    assert Reading.objects.get(meter=meter).source == "reprocess"
    listing = staff_client.get(
        reverse("admin:meters_quarantine_changelist") + "?reason__exact=bad_signature"
    )
    assert listing.status_code == 200


def test_staff_ingest_page_shows_rate_rejects_and_silent_meters(staff_client, member):
    heard = MeterFactory()
    silent = MeterFactory()
    Meter.objects.filter(pk=heard.pk).update(last_seen=datetime.now(tz=UTC))
    good = Publisher.reading(heard, T0, 10)
    from apps.meters.readings.pipeline import reading_batch_ingest

    batch = raw_batch_store(messages=[("t", json.dumps(good).encode()), ("t", b"[1")])
    reading_batch_ingest(batch_id=batch)
    page = staff_client.get(reverse("meters:ingest"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "malformed" in html
    assert silent.serial in html and heard.serial not in html.split("silent-meters")[1]
    member_client = Client()  # `client` is the staff session here
    member_client.force_login(member.user)
    assert member_client.get(reverse("meters:ingest")).status_code == 403  # staff only


def test_staff_ingest_page_lists_stuck_batches_with_their_reason(staff_client, settings):
    from apps.meters.readings.pipeline import reading_batch_ingest

    meter = MeterFactory()
    doc = json.dumps(Publisher.reading(meter, T0, 10)).encode()
    healthy = raw_batch_store(messages=[("t", doc)])
    reading_batch_ingest(batch_id=healthy)
    # a batch whose worker died twice (attempts counted, still pending a while later)
    retrying = raw_batch_store(messages=[("t", doc)], bridge="bridge-7")
    RawBatch.objects.filter(pk=retrying).update(
        attempts=2, received_at=datetime.now(tz=UTC) - timedelta(minutes=5)
    )
    # a batch that failed every attempt: quarantined whole
    settings.METER_INGEST_MAX_ATTEMPTS = 3
    given_up = raw_batch_store(messages=[("t", doc), ("t", b"{}")])
    RawBatch.objects.filter(pk=given_up).update(attempts=3)
    reading_batch_ingest(batch_id=given_up)
    assert Quarantine.objects.filter(batch_id=given_up, reason="batch_stuck").count() == 2
    html = staff_client.get(reverse("meters:ingest")).content.decode()
    table = html.split('id="stuck-batches"')[1].split("</table>")[0]
    rows = {row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in table.split("<tr>")[2:]}
    assert set(rows) == {str(retrying), str(given_up)}  # the healthy batch is not listed
    assert (
        "retrying" in rows[str(retrying)]
        and "2 processing attempt(s) failed" in rows[str(retrying)]
    )
    assert "bridge-7" in rows[str(retrying)]
    assert (
        "quarantined" in rows[str(given_up)]
        and "batch_stuck: 3 processing attempts failed" in (rows[str(given_up)])
    )
    quarantine_link = f"?batch__exact={given_up}"
    assert quarantine_link in rows[str(given_up)]
    listing = staff_client.get(reverse("admin:meters_quarantine_changelist") + quarantine_link)
    assert listing.status_code == 200 and "2 quarantine" in listing.content.decode()


def test_ingest_task_path_is_idempotent_and_the_sweeper_finds_pending_batches():
    """Celery path: the task function called directly (what a worker runs)."""
    from apps.meters.readings.pipeline import pending_batches
    from apps.meters.tasks import ingest_batch

    meter = MeterFactory()
    batch = raw_batch_store(messages=[("t", json.dumps(Publisher.reading(meter, T0, 5)).encode())])
    assert batch in pending_batches(older_than=timedelta(0))  # never enqueued: swept
    assert ingest_batch(batch) == {"batch": batch, "accepted": 1, "rejected": 0}
    assert ingest_batch(batch) == {"batch": batch, "accepted": 0, "rejected": 0}  # no-op
    assert Reading.objects.filter(meter=meter).count() == 1
    assert batch not in pending_batches(older_than=timedelta(0))


def test_status_message_updates_last_seen_and_firmware():
    import json
    import time

    from apps.meters.models import Quarantine
    from apps.meters.services import meter_status_record
    from apps.meters.simulator import status_doc

    meter = MeterFactory()
    topic = f"p/meters/{meter.serial}/status"
    signed = status_doc(meter.serial, meter.test_key, now=time.time(), firmware="2.1.0")
    assert meter_status_record(topic=topic, payload=json.dumps(signed).encode())
    meter.refresh_from_db()
    assert meter.firmware_version == "2.1.0" and meter.last_seen is not None
    assert not meter_status_record(topic="p/meters/NOPE/status", payload=b'{"firmware": "x"}')
    assert Quarantine.objects.get(serial="NOPE").reason == "bad_version"
