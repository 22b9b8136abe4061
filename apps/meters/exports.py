"""Green Button (NAESB ESPI REQ.21) XML and CSV exports of a member's interval data.

ESPI structure: an Atom feed whose entries carry UsagePoint, MeterReading, ReadingType and
IntervalBlock resources (namespace http://naesb.org/espi), linked by `up`/`related` links;
IntervalBlock holds IntervalReading elements (ReadingQuality, timePeriod, value) in schema order.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

from lxml import etree

from apps.core.spreadsheets import SafeCsvWriter
from apps.meters.selectors import JOIN_WINDOWS, member_meters, occupancy_windows_sql

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
NSMAP = {None: ATOM, "espi": ESPI}

# ReadingType codes (ESPI / IEC 61968-9): Wh, real energy, delivered (1) / received (19),
# bulk quantity per interval (accumulationBehaviour 4 = deltaData), electricity (commodity 1).
UOM_WH = 72
FLOW_FORWARD = 1  # energy delivered to the customer (import)
FLOW_REVERSE = 19  # energy received from the customer (export)


def interval_rows(*, member, start: datetime, end: datetime) -> list[tuple]:
    """(meter serial, meter id, interval start, seconds, import, export, quality, version)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            occupancy_windows_sql("= %s")  # noqa: S608
            + "SELECT m.serial, m.id, r.interval_start, r.interval_seconds, r.import_wh, "
            "r.export_wh, r.quality, r.version FROM meters_reading r "
            + JOIN_WINDOWS
            + "JOIN meters_meter m ON m.id = r.meter_id WHERE r.is_current "
            "AND r.interval_start >= %s AND r.interval_start < %s ORDER BY m.serial, 3",
            [member.pk, member.pk, start, end],
        )
        return cursor.fetchall()


def readings_csv(*, member, start: datetime, end: datetime) -> str:
    out = io.StringIO()
    writer = SafeCsvWriter(out)
    writer.writerow(
        [
            "meter",
            "interval_start_utc",
            "interval_end_utc",
            "import_wh",
            "export_wh",
            "quality",
            "version",
        ]
    )
    from datetime import timedelta

    for serial, _, t, seconds, imp, exp, quality, version in interval_rows(
        member=member, start=start, end=end
    ):
        writer.writerow(
            [
                serial,
                t.isoformat(),
                (t + timedelta(seconds=seconds)).isoformat(),
                imp,
                exp,
                quality,
                version,
            ]
        )
    return out.getvalue()


def _sub(parent, tag: str, text=None, ns: str = ESPI):
    el = etree.SubElement(parent, f"{{{ns}}}{tag}")
    if text is not None:
        el.text = str(text)
    return el


def _entry(feed, *, title: str, href: str, up: str | None, related: list[str], updated: str):
    entry = _sub(feed, "entry", ns=ATOM)
    _sub(entry, "id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, href)}", ns=ATOM)
    link = _sub(entry, "link", ns=ATOM)
    link.set("rel", "self")
    link.set("href", href)
    if up:
        link = _sub(entry, "link", ns=ATOM)
        link.set("rel", "up")
        link.set("href", up)
    for rel in related:
        link = _sub(entry, "link", ns=ATOM)
        link.set("rel", "related")
        link.set("href", rel)
    _sub(entry, "title", title, ns=ATOM)
    _sub(entry, "published", updated, ns=ATOM)
    _sub(entry, "updated", updated, ns=ATOM)
    return _sub(entry, "content", ns=ATOM)


def green_button_xml(*, member, start: datetime, end: datetime) -> bytes:
    rows = interval_rows(member=member, start=start, end=end)
    now = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap=NSMAP)
    _sub(feed, "id", f"urn:uuid:{uuid.uuid4()}", ns=ATOM)
    _sub(feed, "title", f"Green Button data of member {member.membership_number}", ns=ATOM)
    _sub(feed, "updated", now, ns=ATOM)
    by_meter: dict[int, list] = {}
    serials: dict[int, str] = {}
    for serial, meter_id, *rest in rows:
        by_meter.setdefault(meter_id, []).append(rest)
        serials[meter_id] = serial
    for meter in member_meters(member=member):
        base = f"/espi/1_1/resource/RetailCustomer/{member.pk}/UsagePoint/{meter.pk}"
        content = _entry(
            feed,
            title=f"Meter {meter.serial}",
            href=base,
            up=f"/espi/1_1/resource/RetailCustomer/{member.pk}/UsagePoint",
            related=[f"{base}/MeterReading"],
            updated=now,
        )
        usage_point = _sub(content, "UsagePoint")
        category = _sub(usage_point, "ServiceCategory")
        _sub(category, "kind", 0)  # 0 = electricity
        for direction, flow, index in (("import", FLOW_FORWARD, 0), ("export", FLOW_REVERSE, 1)):
            reading_href = f"{base}/MeterReading/{direction}"
            type_href = f"/espi/1_1/resource/ReadingType/{meter.pk}-{direction}"
            content = _entry(
                feed,
                title=f"{meter.serial} {direction}",
                href=reading_href,
                up=f"{base}/MeterReading",
                related=[f"{reading_href}/IntervalBlock", type_href],
                updated=now,
            )
            _sub(content, "MeterReading")
            content = _entry(
                feed,
                title=f"{direction} energy (Wh)",
                href=type_href,
                up="/espi/1_1/resource/ReadingType",
                related=[],
                updated=now,
            )
            reading_type = _sub(content, "ReadingType")
            for tag, value in (
                ("accumulationBehaviour", 4),
                ("commodity", 1),
                ("dataQualifier", 12),
                ("flowDirection", flow),
                ("intervalLength", meter.interval_seconds),
                ("kind", 12),
                ("phase", 769),
                ("powerOfTenMultiplier", 0),
                ("uom", UOM_WH),
            ):
                _sub(reading_type, tag, value)
            content = _entry(
                feed,
                title=f"{meter.serial} {direction} intervals",
                href=f"{reading_href}/IntervalBlock/1",
                up=f"{reading_href}/IntervalBlock",
                related=[],
                updated=now,
            )
            block = _sub(content, "IntervalBlock")
            data = by_meter.get(meter.pk, [])
            first = int(data[0][0].timestamp()) if data else int(start.timestamp())
            last_end = (int(data[-1][0].timestamp()) + data[-1][1]) if data else first
            interval = _sub(block, "interval")
            _sub(interval, "duration", last_end - first)
            _sub(interval, "start", first)
            for t, seconds, imp, exp, quality, _version in data:
                reading = _sub(block, "IntervalReading")
                rq = _sub(reading, "ReadingQuality")
                _sub(rq, "quality", quality)
                period = _sub(reading, "timePeriod")
                _sub(period, "duration", seconds)
                _sub(period, "start", int(t.timestamp()))
                _sub(reading, "value", (imp, exp)[index])
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)
