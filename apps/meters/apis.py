"""DRF: the HTTP gateway (same validation as the MQTT bridge) and the member's exports."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.policy import (
    Capability,
    MemberApiPermission,
    PublicApiPermission,
    request_allows,
)
from apps.accounts.selectors import member_for_user
from apps.meters.exports import green_button_xml, readings_csv
from apps.meters.models import QuarantineReason, Source
from apps.meters.readings.pipeline import raw_batch_store, reading_batch_ingest
from apps.meters.selectors import gateway_for_token, member_meters
from apps.meters.services import gateway_rate_take
from apps.meters.views import export_range


class RawBodyParser(BaseParser):
    """Keep the body exactly as received (it is stored raw, then parsed by the ingest service)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read(settings.MQTT_MAX_MESSAGE_BYTES + 1)


class GatewayIngestApi(APIView):
    """POST a message in format v1 (one reading or `{"readings": [...]}`).

    The gateway sends the token staff issued it (`manage.py gateway_token_issue <name>`) as
    `Authorization: Bearer <token>` (401 without); every reading is in addition authenticated
    by its device signature, exactly as over MQTT. At most METER_GATEWAY_REQUESTS_PER_MINUTE
    requests per gateway and minute (429 beyond, nothing stored), and at most
    METER_GATEWAY_READINGS_PER_SERIAL_PER_MINUTE readings per meter serial and minute over all
    gateways: the excess is quarantined `rate_limited` and the answer is 429 with the counts.
    The body is stored as received, then validated by the same service as the bridge's batches.
    A body over MQTT_MAX_MESSAGE_BYTES is refused with 413 and not stored. The answer counts
    rejects by reason; an unknown serial is counted as a bad signature except for staff, so the
    answer does not reveal which serials are registered.
    """

    authentication_classes: list = []
    permission_classes = [PublicApiPermission]
    parser_classes = [RawBodyParser]

    class OutputSerializer(serializers.Serializer):
        batch = serializers.IntegerField()
        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        conflicts = serializers.IntegerField()
        rejected = serializers.IntegerField()
        rejects_by_reason = serializers.DictField(child=serializers.IntegerField())

    def initialize_request(self, request, *args, **kwargs):
        # The session's role, read before DRF replaces the user (no authentication classes).
        # (Schema generation builds requests without a user or session: not staff.)
        self.staff_answer = (
            hasattr(request, "user")
            and hasattr(request, "session")
            and request_allows(request, Capability.STAFF_READ)
        )
        return super().initialize_request(request, *args, **kwargs)

    def post(self, request):
        limit = settings.MQTT_MAX_MESSAGE_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:  # refused before the body is read or stored
            return Response({"detail": f"body over {limit} bytes"}, status=413)
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        gateway = gateway_for_token(token=token.strip()) if scheme == "Bearer" else None
        if gateway is None:  # refused before the body is read or stored
            return Response({"detail": "gateway token required"}, status=401)
        if not gateway_rate_take(gateway=gateway):
            return Response({"detail": "rate limit"}, status=429, headers={"Retry-After": "60"})
        body = request.data if isinstance(request.data, bytes) else b""
        if len(body) > limit:
            return Response({"detail": f"body over {limit} bytes"}, status=413)
        batch_id = raw_batch_store(
            messages=[("http/meters/gateway/readings", body)],
            source=Source.HTTP,
            bridge=f"http:{gateway}",
        )
        result = reading_batch_ingest(batch_id=batch_id)
        reasons = dict(result.rejects_by_reason)
        if not self.staff_answer:
            # Uniform for devices: an unknown serial reads as a bad signature (no enumeration).
            unknown = reasons.pop(QuarantineReason.UNKNOWN_METER.value, 0)
            if unknown:
                bad = QuarantineReason.BAD_SIGNATURE.value
                reasons[bad] = reasons.get(bad, 0) + unknown
        data = self.OutputSerializer(
            {
                "batch": batch_id,
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "conflicts": result.conflicts,
                "rejected": result.rejected,
                "rejects_by_reason": reasons,
            }  # fmt: skip
        ).data
        if reasons.get(QuarantineReason.RATE_LIMITED.value):  # per serial: kept, retry later
            return Response(data, status=429, headers={"Retry-After": "60"})
        status = 202 if result.accepted or result.duplicates or result.conflicts else 422
        return Response(data, status=status)


class MyMetersApi(APIView):
    permission_classes = [MemberApiPermission]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        serial = serializers.CharField()
        asset_kind = serializers.CharField()
        direction = serializers.CharField()
        address = serializers.CharField()
        last_seen = serializers.DateTimeField()

    def get(self, request):
        member = member_for_user(request.user)
        return Response(self.OutputSerializer(member_meters(member=member), many=True).data)


class GreenButtonExportApi(APIView):
    permission_classes = [MemberApiPermission]

    def get(self, request):
        member = member_for_user(request.user)
        start, end = export_range(request)
        return HttpResponse(
            green_button_xml(member=member, start=start, end=end), content_type="application/xml"
        )


class CsvExportApi(APIView):
    permission_classes = [MemberApiPermission]

    def get(self, request):
        member = member_for_user(request.user)
        start, end = export_range(request)
        return HttpResponse(
            readings_csv(member=member, start=start, end=end), content_type="text/csv"
        )
