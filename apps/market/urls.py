from django.urls import path

from apps.market import views

app_name = "market"

urlpatterns = [
    path("", views.trading, name="trading"),
    path("orders/", views.order_create, name="order_create"),
    path("trades/<int:trade_id>/verify/", views.trade_verify, name="trade_verify"),
    path("statements/", views.statements, name="statements"),
    path("statements/<int:pk>/", views.statement_detail, name="statement_detail"),
    path("statements/<int:pk>/pdf/", views.statement_pdf, name="statement_pdf"),
    path("statements/<int:pk>/csv/", views.statement_csv, name="statement_csv"),
    path("staff/monitor/", views.monitor, name="monitor"),
    path("staff/runs/", views.runs, name="runs"),
    path("staff/runs/<int:pk>/anchor/", views.run_anchor, name="run_anchor"),
]
