"""DRF endpoints of the market: the member's own preferences, orders, trades and statements.

Input is parsed by serializers (type errors → field-level 400); business rules are the
services' (ApplicationError → 400 {"message", "extra": {field: [errors]}}). Another member's
object is 404.
"""

from __future__ import annotations

import dataclasses

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.policy import MemberApiPermission
from apps.accounts.selectors import member_for_user
from apps.market import selectors, services
from apps.market.models import Order, Statement, Trade


class PreferenceSerializer(serializers.Serializer):
    max_buy_price = serializers.DecimalField(max_digits=9, decimal_places=6)
    min_sell_price = serializers.DecimalField(max_digits=9, decimal_places=6)
    green_only = serializers.BooleanField(default=False)
    preferred_partners = serializers.ListField(
        child=serializers.IntegerField(), default=list, source="preferred_partner_ids"
    )
    battery_reserve_percent = serializers.IntegerField(default=0)
    auto_trade = serializers.BooleanField(default=True)
    partner_selectable = serializers.BooleanField(default=False)


class OrderInSerializer(serializers.Serializer):
    interval_start = serializers.DateTimeField()
    side = serializers.ChoiceField(choices=Order.Side.choices)
    wh = serializers.IntegerField()
    limit_price = serializers.DecimalField(max_digits=9, decimal_places=6)
    green = serializers.BooleanField(default=False)


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = [
            "id",
            "interval_start",
            "side",
            "wh",
            "limit_price",
            "green",
            "origin",
            "status",
            "matched_wh",
            "created_at",
        ]
        read_only_fields = fields


class TradeSerializer(serializers.ModelSerializer):
    direction = serializers.SerializerMethodField()
    counterparty_zone = serializers.SerializerMethodField()

    class Meta:
        model = Trade
        fields = [
            "id",
            "interval_start",
            "direction",
            "counterparty_zone",
            "distance",
            "wh_from_seller",
            "wh_delivered",
            "loss_wh",
            "price",
            "fee_per_kwh",
            "green",
        ]
        read_only_fields = fields

    def get_direction(self, trade: Trade) -> str:
        return "bought" if trade.buyer_id == self.context["member"].pk else "sold"

    def get_counterparty_zone(self, trade: Trade) -> str:
        mine = trade.buyer_id == self.context["member"].pk
        return trade.seller_zone if mine else trade.buyer_zone


class StatementSerializer(serializers.ModelSerializer):
    class Meta:
        model = Statement
        fields = ["id", "number", "month", "status", "vat_rate", "totals", "issued_at"]
        read_only_fields = fields


class TradeProofSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    trade_id = serializers.IntegerField()
    leaf = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField())
    root = serializers.CharField()
    in_root = serializers.BooleanField()
    anchored_root = serializers.CharField()


class PreferenceApi(APIView):
    permission_classes = [MemberApiPermission]

    @extend_schema(responses=PreferenceSerializer, operation_id="market_preferences_get")
    def get(self, request: Request) -> Response:
        member = member_for_user(request.user)
        pref = selectors.preference_for(member=member)
        if pref is None:
            return Response(status=status.HTTP_404_NOT_FOUND)
        return Response(
            {
                "max_buy_price": str(pref.max_buy_price),
                "min_sell_price": str(pref.min_sell_price),
                "green_only": pref.green_only,
                "preferred_partners": [p.pk for p in pref.preferred_partners.all()],
                "battery_reserve_percent": pref.battery_reserve_percent,
                "auto_trade": pref.auto_trade,
                "partner_selectable": pref.partner_selectable,
                # Whom the member may choose: membership numbers only (no status, no assets).
                "selectable_partners": [
                    {"id": p.pk, "membership_number": p.membership_number}
                    for p in selectors.selectable_partners(member=member)
                ],
            }
        )

    @extend_schema(request=PreferenceSerializer, responses=PreferenceSerializer)
    def put(self, request: Request) -> Response:
        member = member_for_user(request.user)
        serializer = PreferenceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.preference_update(member=member, actor=request.user, **serializer.validated_data)
        return self.get(request)


class OrderListApi(APIView):
    permission_classes = [MemberApiPermission]

    @extend_schema(responses=OrderSerializer(many=True), operation_id="market_orders_list")
    def get(self, request: Request) -> Response:
        member = member_for_user(request.user)
        return Response(OrderSerializer(selectors.member_orders(member=member), many=True).data)

    @extend_schema(request=OrderInSerializer, responses={201: OrderSerializer})
    def post(self, request: Request) -> Response:
        member = member_for_user(request.user)
        serializer = OrderInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = services.order_place(member=member, actor=request.user, **serializer.validated_data)
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)


class OrderDetailApi(APIView):
    permission_classes = [MemberApiPermission]

    @extend_schema(responses=OrderSerializer, operation_id="market_order_get")
    def get(self, request: Request, pk: int) -> Response:
        member = member_for_user(request.user)
        return Response(
            OrderSerializer(selectors.member_order_get(member=member, order_id=pk)).data
        )

    @extend_schema(responses=OrderSerializer, description="Cancel before gate closure.")
    def delete(self, request: Request, pk: int) -> Response:
        member = member_for_user(request.user)
        order = services.order_cancel(member=member, actor=request.user, order_id=pk)
        return Response(OrderSerializer(order).data)


class TradeListApi(APIView):
    permission_classes = [MemberApiPermission]

    @extend_schema(responses=TradeSerializer(many=True))
    def get(self, request: Request) -> Response:
        member = member_for_user(request.user)
        trades = selectors.member_trades(member=member)
        return Response(TradeSerializer(trades, many=True, context={"member": member}).data)


class TradeProofApi(APIView):
    permission_classes = [MemberApiPermission]

    @extend_schema(responses=TradeProofSerializer)
    def get(self, request: Request, pk: int) -> Response:
        member = member_for_user(request.user)
        trade = selectors.member_trade_get(member=member, trade_id=pk)
        proof = services.trade_proof(trade=trade)
        return Response(dataclasses.asdict(proof))


class StatementListApi(APIView):
    permission_classes = [MemberApiPermission]

    @extend_schema(responses=StatementSerializer(many=True))
    def get(self, request: Request) -> Response:
        member = member_for_user(request.user)
        return Response(
            StatementSerializer(selectors.member_statements(member=member), many=True).data
        )
