from django.urls import path

from apps.meters import views

app_name = "meters"

urlpatterns = [
    path("", views.index, name="index"),
    path("<int:pk>/", views.meter_detail, name="meter_detail"),
    path("export/green-button.xml", views.export_green_button, name="export_green_button"),
    path("export/readings.csv", views.export_csv, name="export_csv"),
    path("staff/ingest/", views.staff_ingest, name="ingest"),
]
