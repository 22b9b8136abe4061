from django.apps import AppConfig


class IncentivesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.incentives"
    label = "incentives"
