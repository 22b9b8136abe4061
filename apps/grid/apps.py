from django.apps import AppConfig


class GridConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.grid"
    verbose_name = "Grid and flexibility"
    label = "grid"
