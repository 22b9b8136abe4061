from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The portal shell: navigation by role, base pages, the dashboard, the auditor area and
    /healthz. It reads the other apps through their selectors; no app imports it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.portal"
    label = "portal"
