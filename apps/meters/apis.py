"""DRF: the HTTP gateway (same validation as the MQTT bridge) and the member's exports."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.policy import MemberApiPermission, PublicApiPermission
from apps.accounts.selectors import member_for_user
from apps.meters.exports import green_button_xml, readings_csv
from apps.meters.models import Source
from apps.meters.readings.pipeline import raw_batch_store, reading_batch_ingest
from apps.meters.selectors import member_meters
from apps.meters.views import export_range


class RawBodyParser(BaseParser):
    """Keep the body exactly as received (it is stored raw, then parsed by the ingest service)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read(settings.MQTT_MAX_MESSAGE_BYTES + 1)


class GatewayIngestApi(APIView):
    """POST a message in format v1 (one reading or `{"readings": [...]}`).

    No session: every reading is authenticated by its device signature, exactly as over MQTT.
    The body is stored as received, then validated by the same service as the bridge's batches.
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

    def post(self, request):
        body = request.data if isinstance(request.data, bytes) else b""
        batch_id = raw_batch_store(
            messages=[("http/meters/gateway/readings", body)], source=Source.HTTP, bridge="http"
        )
        result = reading_batch_ingest(batch_id=batch_id)
        data = self.OutputSerializer(
            {
                "batch": batch_id,
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "conflicts": result.conflicts,
                "rejected": result.rejected,
                "rejects_by_reason": result.rejects_by_reason,
            }  # fmt: skip
        ).data
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
