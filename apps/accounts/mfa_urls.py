from django.urls import path

from apps.accounts import mfa_views

urlpatterns = [
    path("enroll/<str:token>/", mfa_views.mfa_enroll, name="mfa_enroll"),
    path("enrollment-required/", mfa_views.mfa_enrollment_required, name="mfa_enrollment_required"),
]
