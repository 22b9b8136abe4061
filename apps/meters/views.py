"""Portal pages: the member's meters (their own only) with exports; the staff ingest page."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_date

from apps.accounts.policy import portal_view, staff_view
from apps.accounts.selectors import member_for_user
from apps.meters.exports import green_button_xml, readings_csv
from apps.meters.models import Quality
from apps.meters.selectors import (
    ingest_stats,
    member_meter_get,
    member_meters,
    member_recent_readings,
    meter_readings_page,
)


def export_range(request: HttpRequest) -> tuple[datetime, datetime]:
    """[start, end) from ?start=YYYY-MM-DD&end=YYYY-MM-DD (UTC days); default the last 7 days."""
    now = timezone.now()
    start_day = parse_date(request.GET.get("start", "") or "")
    end_day = parse_date(request.GET.get("end", "") or "")
    end = (
        datetime(end_day.year, end_day.month, end_day.day, tzinfo=now.tzinfo) + timedelta(days=1)
        if end_day
        else now
    )
    start = (
        datetime(start_day.year, start_day.month, start_day.day, tzinfo=now.tzinfo)
        if start_day
        else end - timedelta(days=7)
    )
    return start, min(end, start + timedelta(days=400))


@portal_view
def index(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    now = timezone.now()
    readings = [
        {"meter": serial, "start": start, "import_wh": imp, "export_wh": exp, "quality": q,
         "quality_label": Quality(q).label if q in Quality.values else "", "version": v,
         "signed": signed}
        for serial, start, imp, exp, q, v, signed in member_recent_readings(member=member, now=now)
    ]  # fmt: skip
    return render(
        request,
        "meters/index.html",
        {"member": member, "meters": member_meters(member=member), "readings": readings},
    )


@portal_view
def meter_detail(request: HttpRequest, pk: int) -> HttpResponse:
    member = member_for_user(request.user)
    meter = member_meter_get(member=member, meter_id=pk)  # 404 for another member's meter
    try:
        page = int(request.GET.get("page", 1))
    except ValueError:
        page = 1
    readings = meter_readings_page(member=member, meter_id=meter.pk, now=timezone.now(), page=page)
    return render(request, "meters/detail.html", {"meter": meter, "readings": readings})


@portal_view
def export_green_button(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    start, end = export_range(request)
    response = HttpResponse(
        green_button_xml(member=member, start=start, end=end), content_type="application/xml"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="greenbutton-{member.membership_number}.xml"'
    )
    return response


@portal_view
def export_csv(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    start, end = export_range(request)
    response = HttpResponse(
        readings_csv(member=member, start=start, end=end), content_type="text/csv"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="readings-{member.membership_number}.csv"'
    )
    return response


@staff_view
def staff_ingest(request: HttpRequest) -> HttpResponse:
    stats = ingest_stats(now=timezone.now())
    return render(request, "meters/staff_ingest.html", {"stats": stats})
