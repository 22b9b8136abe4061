from django.urls import path

from apps.compliance import views

app_name = "compliance"

urlpatterns = [
    path("reports/", views.reports_index, name="reports"),
    path("reports/<slug:kind>/", views.report_detail, name="report"),
    path("reports/<slug:kind>/download/<str:fmt>/", views.report_download, name="report_download"),
    path("my-data/", views.my_data, name="my_data"),
    path("my-data/export/", views.my_data_export, name="my_data_export"),
    path("my-data/erasure/", views.my_data_erasure_request, name="my_data_erasure"),
    path("erasure/", views.erasure_list, name="erasure"),
    path("erasure/<int:pk>/", views.erasure_handle, name="erasure_handle"),
]
