"""Root URL configuration. Each app owns its `urls.py` (portal pages) and `api_urls.py` (DRF)."""

from importlib import import_module

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.accounts.policy import AuthenticatedApiPermission
from apps.core.views import healthz

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
    path("", include(("apps.accounts.urls", "portal"), namespace="portal")),
]


def _optional_include(module: str):
    try:
        import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None
    return include(module)


for _app in ("accounts", "meters", "market", "grid", "incentives", "compliance", "chain"):
    _portal = _optional_include(f"apps.{_app}.urls") if _app != "accounts" else None
    if _portal is not None:
        urlpatterns.append(path(f"{_app}/", _portal))
    _api = _optional_include(f"apps.{_app}.api_urls")
    if _api is not None:
        urlpatterns.append(path(f"api/{_app}/", _api))
