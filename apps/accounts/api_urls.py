from django.urls import path

from apps.accounts import apis

app_name = "accounts-api"

urlpatterns = [
    path("me/", apis.MeApi.as_view(), name="me"),
    path("wallet/challenge/", apis.WalletChallengeApi.as_view(), name="wallet-challenge"),
    path("wallet/link/", apis.WalletLinkApi.as_view(), name="wallet-link"),
]
