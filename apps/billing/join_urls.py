"""The public join pages (/join/), mounted at the site root by config/urls.py."""

from django.urls import path

from apps.billing import views

app_name = "join"

urlpatterns = [
    path("", views.join, name="join"),
    path("verify/", views.join_verify, name="verify"),
]
