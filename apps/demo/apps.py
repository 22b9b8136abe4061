from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo cooperative: loader, profiles, device keys and every app's demo step. It imports
    every app; no app imports it (only tests and bench/ do)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.demo"
    verbose_name = "Demo cooperative"
    label = "demo"
