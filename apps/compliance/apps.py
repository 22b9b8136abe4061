from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.compliance"
    verbose_name = "Compliance and data rights"
    label = "compliance"

    def ready(self) -> None:
        from apps.compliance import checks  # noqa: F401  (registers the deployment check)
