from django.urls import path

from apps.market import apis

app_name = "market-api"

urlpatterns = [
    path("preferences/", apis.PreferenceApi.as_view(), name="preferences"),
    path("orders/", apis.OrderListApi.as_view(), name="orders"),
    path("orders/<int:pk>/", apis.OrderDetailApi.as_view(), name="order_detail"),
    path("trades/", apis.TradeListApi.as_view(), name="trades"),
    path("trades/<int:pk>/proof/", apis.TradeProofApi.as_view(), name="trade_proof"),
    path("statements/", apis.StatementListApi.as_view(), name="statements"),
]
