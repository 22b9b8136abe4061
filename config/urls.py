"""Root URL configuration. Each app owns its `urls.py` (portal pages) and `api_urls.py` (DRF)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.accounts.policy import AuthenticatedApiPermission
from apps.portal.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/mfa/", include("apps.accounts.mfa_urls")),
    path("accounts/", include("allauth.urls")),
    # The API's schema and documentation are for signed-in users (members, staff, auditors).
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[AuthenticatedApiPermission]),
        name="api-schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", permission_classes=[AuthenticatedApiPermission]
        ),
        name="api-docs",
    ),
    path("", include("apps.portal.urls")),
    path("meters/", include("apps.meters.urls")),
    path("market/", include("apps.market.urls")),
    path("grid/", include("apps.grid.urls")),
    path("incentives/", include("apps.incentives.urls")),
    path("compliance/", include("apps.compliance.urls")),
    path("billing/", include("apps.billing.urls")),
    path("notifications/", include("apps.notifications.urls")),
    path("governance/", include("apps.governance.urls")),
    path("join/", include("apps.billing.join_urls")),
    path("api/accounts/", include("apps.accounts.api_urls")),
    path("api/meters/", include("apps.meters.api_urls")),
    path("api/market/", include("apps.market.api_urls")),
    path("api/grid/", include("apps.grid.api_urls")),
]
