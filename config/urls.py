"""Root URL configuration. Each app owns its `urls.py` (portal pages) and `api_urls.py` (DRF)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.portal.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("apps.portal.urls")),
    path("meters/", include("apps.meters.urls")),
    path("market/", include("apps.market.urls")),
    path("grid/", include("apps.grid.urls")),
    path("incentives/", include("apps.incentives.urls")),
    path("compliance/", include("apps.compliance.urls")),
    path("billing/", include("apps.billing.urls")),
    path("api/accounts/", include("apps.accounts.api_urls")),
    path("api/meters/", include("apps.meters.api_urls")),
    path("api/market/", include("apps.market.api_urls")),
    path("api/grid/", include("apps.grid.api_urls")),
]
