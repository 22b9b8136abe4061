from django.apps import AppConfig


class MetersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.meters"
    verbose_name = "Meters and ingest"
    label = "meters"

    def ready(self) -> None:
        from apps.meters import checks  # noqa: F401  (registers the broker deployment checks)
