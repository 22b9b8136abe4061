"""Move out / move in at a site (issue 19, acceptance 2): a mid-month move (the 14th at 00:00
local time of the last month that is over). Each occupant is settled, given a statement and
invoiced exactly for their own intervals and days; the two together are the site's total for
the month in Wh and in cents; the newcomer sees none of the earlier readings on any portal page
or API, and the leaving member keeps seeing exactly theirs."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from lxml import etree

from apps.accounts.tests.factories import AuditorUserFactory, MemberFactory, StaffUserFactory
from apps.audit.models import AuditLog
from apps.billing.models import Invoice, SiteMove, SupplyContract
from apps.billing.services import billing_run, site_move
from apps.billing.tests.factories import SupplyContractFactory, SupplyTariffVersionFactory
from apps.core.exceptions import ApplicationError
from apps.grid.tests.factories import ConnectionPointFactory
from apps.market.models import Mechanism, SettlementLine, SettlementRun, Statement
from apps.market.services import settlement_runs_process
from apps.market.services.intervals import settlement_run_for
from apps.market.services.statements import month_bounds
from apps.market.tests.factories import TariffFactory
from apps.meters.models import MeterRegisterRead, Quality
from apps.meters.selectors import interval_totals, member_interval_energy
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db

Q = timedelta(minutes=15)
TZ = ZoneInfo(settings.COOPERATIVE_TIME_ZONE)
BEFORE_WH, AFTER_WH = 100, 200  # per interval: the leaving and the incoming member


def _last_month_14th() -> datetime:
    today = timezone.now().astimezone(TZ).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=14)
    return datetime(last_month.year, last_month.month, 14, tzinfo=TZ).astimezone(UTC)


def _intervals(start: datetime, end: datetime) -> list[datetime]:
    return [start + k * Q for k in range(int((end - start) / Q))]


@pytest.fixture
def site():
    TariffFactory()  # the market's tariff (settlement prices)
    version = SupplyTariffVersionFactory()
    leaving, incoming = MemberFactory(), MemberFactory()
    point = ConnectionPointFactory(member=leaving)
    contract = SupplyContractFactory(
        member=leaving, connection_point=point, tariff=version.tariff, start=date(2026, 1, 1)
    )
    meter = MeterFactory(member=leaving, connection_point=point, key=False)
    move = _last_month_14th()
    # a day either side of the move; and the newcomer's last day, for the live pages
    now = timezone.now().replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 15)
    this_month = month_bounds(timezone.now().astimezone(TZ).date())[0]
    recent = _intervals(max(now - timedelta(days=1), this_month), now)
    readings_backfill(
        rows=[
            BackfillRow(
                meter_id=meter.pk,
                interval_start=t,
                export_wh=0,
                import_wh=BEFORE_WH if t < move else AFTER_WH,
            )  # fmt: skip
            for t in _intervals(move - timedelta(days=1), move + timedelta(days=1)) + recent
        ]
    )
    return leaving, incoming, point, contract, meter, move


def _settle_and_bill(move: datetime) -> tuple[date, datetime, datetime]:
    # the days' settlement runs, cleared without trades (nothing to clear interval by interval)
    runs = {settlement_run_for(at=t, mechanism=Mechanism.PAY_AS_CLEAR).pk
            for t in _intervals(move - timedelta(days=1), move + timedelta(days=1))}  # fmt: skip
    SettlementRun.transition_where(
        SettlementRun.objects.filter(pk__in=runs), SettlementRun.Status.OPEN,
        SettlementRun.Status.CLEARED,
    )  # fmt: skip
    month = move.astimezone(TZ).date().replace(day=1)
    start, end = month_bounds(month)
    assert len(settlement_runs_process(now=end + timedelta(days=1))) == 3  # UTC days
    billing_run(period=f"{month:%Y-%m}", now=end + timedelta(days=2))
    return month, start, end


def _rows(response) -> list[dict]:
    assert response.status_code == 200, response.status_code
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _green_button_starts(response) -> list[datetime]:
    assert response.status_code == 200, response.status_code
    tree = etree.fromstring(response.content)
    starts = tree.findall(".//{http://naesb.org/espi}IntervalReading/{*}timePeriod/{*}start")
    return [datetime.fromtimestamp(int(s.text), UTC) for s in starts]


def test_mid_month_move_bills_each_occupant_for_their_days_and_hides_the_history(site):
    leaving, incoming, point, contract, meter, move = site
    staff = StaffUserFactory()
    site_move(connection_point=point, leaving_member=leaving, incoming_member=incoming, at=move,
              final_reading="real", actor=staff)  # fmt: skip

    # The site, its meter and the supply contracts changed hands at the move.
    point.refresh_from_db()
    meter.refresh_from_db()
    move_day = move.astimezone(TZ).date()
    assert (point.member_id, meter.member_id, meter.member_since) == (
        incoming.pk,
        incoming.pk,
        move,
    )
    contract.refresh_from_db()
    assert contract.end == move_day - timedelta(days=1)
    started = SupplyContract.objects.get(member=incoming)
    assert (started.start, started.connection_point_id) == (move_day, point.pk)
    final = MeterRegisterRead.objects.get(meter=meter)
    assert (final.quality, final.register_import_wh) == (Quality.VALID, 96 * BEFORE_WH)
    assert AuditLog.objects.filter(event="site.moved", target_id=str(SiteMove.objects.get().pk))

    month, start, end = _settle_and_bill(move)

    # Settlement: each occupant exactly for their intervals; together the site's month total.
    lines = SettlementLine.objects.filter(run__period_start__gte=start - timedelta(days=1))
    mine = {m: lines.filter(member=m) for m in (leaving, incoming)}
    assert {t.interval_start < move for t in mine[leaving]} == {True}
    assert {t.interval_start >= move for t in mine[incoming]} == {True}
    totals = interval_totals(start=start, end=end, connection_point_ids=[point.pk])
    site_wh = sum(t.import_wh for t in totals)
    wh = {m: sum(line.import_wh for line in mine[m]) for m in mine}
    assert wh == {leaving: 96 * BEFORE_WH, incoming: 96 * AFTER_WH}
    assert sum(wh.values()) == site_wh

    # Statements and invoices: one each, for their own energy and days; sums are the site's.
    statements = {s.member_id: s for s in Statement.objects.filter(month=month)}
    assert set(statements) == {leaving.pk, incoming.pk}
    invoices = {i.member_id: i for i in Invoice.objects.filter(period=month)}
    assert set(invoices) == {leaving.pk, incoming.pk}
    supply = {m: invoices[m].lines.get(kind="residual_supply") for m in (leaving.pk, incoming.pk)}
    assert supply[leaving.pk].quantity == Decimal("9.600")  # kWh
    assert supply[incoming.pk].quantity == Decimal("19.200")
    price = supply[leaving.pk].unit_price
    assert sum(s.net for s in supply.values()) == (Decimal(site_wh) / 1000 * price).quantize(
        Decimal("0.01")
    )
    month_days = (end.astimezone(TZ).date() - month).days
    days_before = (move_day - month).days  # the 1st to the 13th
    standing = {m: invoices[m].lines.get(kind="standing_charge") for m in invoices}
    assert f"({days_before}/{month_days} d)" in standing[leaving.pk].description
    assert f"({month_days - days_before}/{month_days} d)" in standing[incoming.pk].description

    # The newcomer sees nothing before the move — pages, exports and APIs alike.
    newcomer = Client()
    newcomer.force_login(incoming.user)
    span = {"start": f"{move - timedelta(days=2):%Y-%m-%d}", "end": f"{timezone.now():%Y-%m-%d}"}
    for url in ("/meters/export/readings.csv", "/api/meters/export/csv/"):
        rows = _rows(newcomer.get(url, span))
        assert rows and min(r["interval_start_utc"] for r in rows) == move.isoformat()
        assert {int(r["import_wh"]) for r in rows} == {AFTER_WH}
    for url in ("/meters/export/green-button.xml", "/api/meters/export/green-button/"):
        starts = _green_button_starts(newcomer.get(url, span))
        assert starts and min(starts) == move
    shown = []  # every page of the meter's last 48 hours
    for n in range(1, 9):
        page = newcomer.get(f"/meters/{meter.pk}/", {"page": n})
        assert page.status_code == 200
        shown += page.context["readings"]["rows"]
    assert shown and all(r[1] >= move for r in shown)
    dashboard = newcomer.get("/")
    assert dashboard.status_code == 200
    points = dashboard.context["data"]["chart"]["week"]
    assert points and all(datetime.fromisoformat(p["t"]) >= move for p in points)
    assert newcomer.get(f"/market/statements/{statements[leaving.pk].pk}/").status_code == 404

    # The leaving member keeps exactly their own days.
    former = Client()
    former.force_login(leaving.user)
    rows = _rows(former.get("/meters/export/readings.csv", span))
    assert len(rows) == 96 and max(r["interval_start_utc"] for r in rows) < move.isoformat()
    assert [m["serial"] for m in former.get("/api/meters/mine/").json()] == [meter.serial]


def test_a_final_reading_is_estimated_and_flagged_when_the_meter_did_not_report(site):
    leaving, incoming, point, _contract, meter, move = site
    later = move + timedelta(days=1) + 2 * Q  # the readings stop at move + 1 day: 2 missing
    with pytest.raises(ApplicationError, match="no measured reading"):
        site_move(connection_point=point, leaving_member=leaving, incoming_member=incoming,
                  at=later, final_reading="real")  # fmt: skip
    site_move(connection_point=point, leaving_member=leaving, incoming_member=incoming,
              at=later, final_reading="estimated")  # fmt: skip
    final = MeterRegisterRead.objects.get(meter=meter)
    # the last stored register + the two missing intervals at the day before's mean
    assert final.quality == Quality.ESTIMATED
    assert final.register_import_wh == 96 * BEFORE_WH + 96 * AFTER_WH + 2 * AFTER_WH
    assert AuditLog.objects.get(event="meter_registers.read").details["estimated"] is True


def test_staff_move_a_site_through_a_confirmation_page_and_auditors_cannot(site):
    leaving, incoming, point, _contract, meter, move = site
    url = "/billing/staff/moves/"
    form = {"stage": "confirm", "connection_point": point.pk, "incoming_member": incoming.pk,
            "at": move.strftime("%Y-%m-%d %H:%M:%S"), "final_reading": "real"}  # fmt: skip
    auditor = Client()
    login_with_mfa(auditor, AuditorUserFactory())
    assert auditor.get(url).status_code == 200  # reads the list
    assert auditor.post(url, {**form, "confirm": "yes"}).status_code == 403
    staff = Client()
    login_with_mfa(staff, StaffUserFactory())
    page = staff.post(url, form)  # the confirmation page: nothing moved yet
    assert page.status_code == 200 and b"confirm-summary" in page.content
    assert point.code.encode() in page.content and not SiteMove.objects.exists()
    assert staff.post(url, {**form, "confirm": "yes"}).status_code == 302
    recorded = SiteMove.objects.get()
    assert (recorded.leaving_member, recorded.incoming_member, recorded.at) == (
        leaving,
        incoming,
        move,
    )
    assert AuditLog.objects.get(event="site.moved").actor_id is not None
    meter.refresh_from_db()
    assert meter.member_id == incoming.pk
    assert point.code.encode() in staff.get(url).content  # listed


def test_a_move_out_without_a_newcomer_leaves_the_meters_to_nobody(site):
    leaving, stranger, point, contract, meter, move = site
    site_move(connection_point=point, leaving_member=leaving, at=move, final_reading="real")
    meter.refresh_from_db()
    contract.refresh_from_db()
    assert (meter.member_id, meter.member_since) == (None, move)
    assert contract.end == move.astimezone(TZ).date() - timedelta(days=1)
    assert not SupplyContract.objects.exclude(pk=contract.pk).exists()
    energy = member_interval_energy(member_ids=[leaving.pk], start=move - Q, end=move + Q)
    assert list(energy) == [(leaving.pk, move - Q)]  # theirs up to the move, nobody's after
    with pytest.raises(ApplicationError, match="not occupied by member"):
        site_move(connection_point=point, leaving_member=stranger, at=move + Q,
                  final_reading="estimated")  # fmt: skip
