"""Compliance pages: auditor/staff reports, member data rights, staff erasure handling.

Views parse input and call selectors/services; access is decided by the permission policy
(apps.accounts.policy).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.policy import portal_view, reports_view, staff_view
from apps.accounts.selectors import member_for_user, member_id_by_number
from apps.compliance.models import ErasureRequest
from apps.compliance.reports import FORMATS, REPORTS, report_build
from apps.compliance.reports.document import ReportDocument
from apps.compliance.services import (
    erasure_request_create,
    erasure_request_refuse,
    member_erase,
    member_open_settlements,
    report_export,
    report_export_stream,
)
from apps.core.exceptions import ApplicationError

logger = logging.getLogger(__name__)


def _period(request: HttpRequest) -> tuple[datetime, datetime, str]:
    """[start, end) from ?month=YYYY-MM, or ?start=YYYY-MM-DD&end=YYYY-MM-DD (end exclusive)."""
    start_s, end_s = request.GET.get("start"), request.GET.get("end")
    try:
        if start_s and end_s:
            start = datetime.fromisoformat(start_s).replace(tzinfo=UTC)
            end = datetime.fromisoformat(end_s).replace(tzinfo=UTC)
            return start, end, ""
        month = request.GET.get("month") or datetime.now(UTC).strftime("%Y-%m")
        start = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ApplicationError(
            "Give the period as month=YYYY-MM or start/end=YYYY-MM-DD.", {}
        ) from exc
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end, month


def _pinned(request: HttpRequest, kind: str) -> dict[str, int]:
    out = {}
    for name in REPORTS[kind].pinned:
        value = request.GET.get(name, "")
        if value.isdigit():
            out[name] = int(value)
    return out


def _member_id(request: HttpRequest) -> int | None:
    number = (request.GET.get("member") or "").strip()
    if not number:
        return None
    member_id = member_id_by_number(membership_number=number)
    if member_id is None:
        raise ApplicationError(f"No member {number}.", {"member": number})
    return member_id


@reports_view
@require_http_methods(["GET"])
def reports_index(request: HttpRequest) -> HttpResponse:
    month = request.GET.get("month") or datetime.now(UTC).strftime("%Y-%m")
    return render(request, "compliance/reports.html", {"reports": REPORTS.values(), "month": month})


@reports_view
@require_http_methods(["GET"])
def report_detail(request: HttpRequest, kind: str) -> HttpResponse:
    spec = REPORTS.get(kind)
    if spec is None:
        return render(request, "compliance/report.html", {"error": "Unknown report."}, status=404)
    context: dict = {"spec": spec, "query": request.GET.urlencode(), "formats": list(FORMATS)}
    try:
        start, end, month = _period(request)
        context.update({"start": start, "end": end, "month": month})
        doc = report_build(
            kind=kind,
            start=start,
            end=end,
            member_id=_member_id(request),
            pinned=_pinned(request, kind),
        )
    except ApplicationError as exc:
        context["error"] = exc.message
        return render(request, "compliance/report.html", context, status=400)
    context["doc"] = doc
    # Download links carry the pinned parameters so the files hash to what this page shows.
    query = request.GET.copy()
    for name in spec.pinned:
        query[name] = str(doc.params[name])
    context["query"] = query.urlencode()
    context["preview"] = [
        {
            "name": t.name,
            "columns": t.columns,
            "rows": list(islice(t.iter_rows(), 25)),
            "count": t.row_count,
        }
        for t in doc.tables
    ]
    return render(request, "compliance/report.html", context)


@reports_view
@require_http_methods(["GET"])
def report_download(request: HttpRequest, kind: str, fmt: str) -> HttpResponseBase:
    if kind not in REPORTS or fmt not in FORMATS:
        return HttpResponse("Unknown report or format.", status=404, content_type="text/plain")
    try:
        start, end, _ = _period(request)
        doc = report_build(
            kind=kind,
            start=start,
            end=end,
            member_id=_member_id(request),
            pinned=_pinned(request, kind),
        )
    except ApplicationError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    if fmt == "csv" and doc.streamed:  # rows ∝ meters × intervals: never held whole
        return _csv_stream_response(request, doc)
    try:
        body, content_type, filename = report_export(doc=doc, fmt=fmt, actor=request.user)
    except ApplicationError as exc:  # too large for a file built whole: use CSV
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-SHA256"] = doc.content_hash
    return response


def _csv_stream_response(request: HttpRequest, doc: ReportDocument) -> StreamingHttpResponse:
    """The CSV report streamed in chunks. Under ASGI the chunks are produced one at a time on
    the request's thread (a synchronous iterator would be read whole into memory there)."""
    chunks, content_type, filename = report_export_stream(doc=doc, actor=request.user)
    logged = _logged(chunks, doc.kind)
    body: Iterator[bytes] | AsyncIterator[bytes] = logged
    if isinstance(request, ASGIRequest):
        body = _async_chunks(logged)
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-SHA256"] = doc.content_hash
    return response


def _logged(chunks: Iterator[bytes], kind: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except Exception:
        # The status line is sent: the client sees a broken transfer, the log says why.
        logger.exception("the %s report stream stopped", kind)
        raise


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


async def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    step = sync_to_async(_next_chunk, thread_sensitive=True)
    try:
        while (chunk := await step(chunks)) is not None:
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=True)()


# --- member data rights ----------------------------------------------------------------------


@portal_view
@require_http_methods(["GET"])
def my_data(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    requests = ErasureRequest.objects.filter(member=member)[:5]
    return render(request, "compliance/my_data.html", {"member": member, "requests": requests})


@portal_view
@require_POST
def my_data_export(request: HttpRequest) -> HttpResponse:
    from apps.compliance.data_export import member_data_export

    member = member_for_user(request.user)
    body, filename = member_data_export(member=member, actor=request.user)
    response = HttpResponse(body, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@portal_view
@require_POST
def my_data_erasure_request(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    try:
        erasure_request_create(member=member, actor=request.user)
        messages.success(request, "Your erasure request was sent to the cooperative's staff.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:my_data")


# --- staff: erasure --------------------------------------------------------------------------


@reports_view
@require_http_methods(["GET"])
def erasure_list(request: HttpRequest) -> HttpResponse:
    rows = ErasureRequest.objects.select_related("member", "handled_by")[:200]
    pending = [
        {"request": r, "open": member_open_settlements(member=r.member)}
        for r in rows
        if r.status == ErasureRequest.Status.REQUESTED
    ]
    return render(request, "compliance/erasure.html", {"requests": rows, "pending": pending})


@staff_view
@require_POST
def erasure_handle(request: HttpRequest, pk: int) -> HttpResponse:
    erasure = get_object_or_404(ErasureRequest, pk=pk)
    action = request.POST.get("action")
    try:
        if action == "erase":
            member_erase(member=erasure.member, actor=request.user, request=erasure)
            messages.success(request, f"Member {erasure.member.membership_number} was erased.")
        elif action == "refuse":
            erasure_request_refuse(
                request=erasure,
                actor=request.user,
                reason=request.POST.get("reason") or "Refused by staff.",
            )
            messages.info(request, "The request was refused.")
        else:
            messages.error(request, "Choose erase or refuse.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:erasure")
