from django.urls import path

from apps.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("profile/", views.my_profile, name="profile"),
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/challenge/", views.wallet_challenge, name="wallet_challenge"),
    path("wallet/link/", views.wallet_link_submit, name="wallet_link"),
    path("auditor/", views.auditor_area, name="auditor"),
    path("coming/<slug:section>/", views.coming, name="coming"),
]
