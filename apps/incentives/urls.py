from django.urls import path

from apps.incentives import views

app_name = "incentives"

urlpatterns = [
    path("certificates/", views.certificates, name="certificates"),
    path("certificates/<int:pk>/claim/", views.certificate_claim_view, name="certificate_claim"),
    path("certificates/claim-month/", views.certificates_claim_month, name="claim_month"),
    path("certificates/auto-claim/", views.certificates_auto_claim_set, name="auto_claim"),
    path("shared-plants/", views.shared_plants, name="shared_plants"),
    path("rewards/", views.rewards, name="rewards"),
    path("rewards/redeem/", views.rewards_redeem, name="rewards_redeem"),
    path("registry/", views.registry, name="registry"),
    path("registry/<int:pk>/cancel/", views.registry_cancel, name="registry_cancel"),
]
