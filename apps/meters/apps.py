import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate

logger = logging.getLogger(__name__)


def _forget_reading_versions(**kwargs) -> None:
    """After a migrate or flush (a new or emptied database, whose primary keys start again) no
    member page cached for an earlier database may be served: new readings versions."""
    from apps.meters.readings.versions import readings_versions_forget

    try:
        readings_versions_forget()
    except Exception:  # noqa: BLE001 - a cache outage must not fail the migration
        logger.warning("Could not start a new generation of readings versions", exc_info=True)


class MetersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.meters"
    verbose_name = "Meters and ingest"
    label = "meters"

    def ready(self) -> None:
        from apps.meters import checks  # noqa: F401  (registers the broker deployment checks)

        post_migrate.connect(
            _forget_reading_versions, sender=self, dispatch_uid="meters.reading_versions_forget"
        )
