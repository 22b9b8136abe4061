from django.urls import path

from apps.meters import apis

app_name = "meters-api"

urlpatterns = [
    path("ingest/", apis.GatewayIngestApi.as_view(), name="gateway_ingest"),
    path("mine/", apis.MyMetersApi.as_view(), name="my_meters"),
    path("export/green-button/", apis.GreenButtonExportApi.as_view(), name="export_green_button"),
    path("export/csv/", apis.CsvExportApi.as_view(), name="export_csv"),
]
