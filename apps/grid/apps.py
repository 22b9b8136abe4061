from django.apps import AppConfig


class GridConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.grid"
    verbose_name = "Grid and flexibility"
    label = "grid"

    def ready(self) -> None:
        from apps.grid import receivers
        from apps.meters.signals import device_status_recorded

        device_status_recorded.connect(
            receivers.on_device_status_recorded, dispatch_uid="grid.device_status_recorded"
        )
