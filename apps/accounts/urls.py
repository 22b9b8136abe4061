from django.urls import path

from apps.accounts import views

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
