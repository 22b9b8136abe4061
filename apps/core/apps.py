from django.apps import AppConfig


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.core"
    verbose_name = "Core"
    label = "core"

    def ready(self) -> None:
        from apps.core import checks  # noqa: F401  (registers the deployment checks)
