"""django-axes under a label staff understand in the admin (its own is "Axes")."""

from axes.apps import AppConfig as AxesAppConfig


class AxesConfig(AxesAppConfig):
    verbose_name = "Login attempts and lockouts"
