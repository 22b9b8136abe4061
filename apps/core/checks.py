"""Deployment guard: production refuses to start with development settings.

Registered as deployment checks (`manage.py check --deploy`) and run at start-up of every
production process (`config.settings.production` sets ``PRODUCTION_GUARD``; see
:func:`production_guard`). Each problem is its own error with an id, so the operator sees every
one of them at once, not the first.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register, run_checks
from django.core.exceptions import ImproperlyConfigured

# Values that must never sign sessions in production: Django's own insecure prefix, short or
# low-entropy keys (the thresholds of Django's security.W009) and the untracked development key
# that config.settings.base generates into `.secret_key`.
_MIN_SECRET_KEY_LENGTH = 50
_MIN_SECRET_KEY_UNIQUE_CHARACTERS = 5


def deployment_check(func):
    """Register `func` as a security deployment check (`check --deploy`). Under the production
    guard it is also an ordinary check, so every management command (migrate, mqtt_bridge,
    demo_cooperative, …) refuses to run with development settings."""
    if getattr(settings, "PRODUCTION_GUARD", False):
        register(Tags.security)(func)  # every check run, `check --deploy` included
    else:
        register(Tags.security, deploy=True)(func)
    return func


def _development_secret_keys() -> set[str]:
    path = Path(settings.BASE_DIR) / ".secret_key"
    return {path.read_text().strip()} if path.exists() else set()


@deployment_check
def check_django_secrets(app_configs=None, **kwargs) -> list[Error]:
    errors: list[Error] = []
    key = str(settings.SECRET_KEY or "")
    if (
        key.startswith("django-insecure")
        or len(key) < _MIN_SECRET_KEY_LENGTH
        or len(set(key)) < _MIN_SECRET_KEY_UNIQUE_CHARACTERS
        or key in _development_secret_keys()
    ):
        errors.append(
            Error(
                "SECRET_KEY is a development key (the generated `.secret_key`, a short or "
                "low-entropy value, or Django's insecure default).",
                hint="Set SECRET_KEY to at least 50 random characters kept outside the code.",
                id="energysphere.E001",
            )
        )
    if settings.DEBUG:
        errors.append(
            Error(
                "DEBUG is on.",
                hint="Unset DJANGO_DEBUG (production runs with DEBUG=False).",
                id="energysphere.E002",
            )
        )
    return errors


def production_guard() -> None:
    """Raise ImproperlyConfigured naming every deployment error, when the guard is on.

    Called by the ASGI application and the Celery app at start, so a production process never
    serves or signs anything with development secrets.
    """
    if not getattr(settings, "PRODUCTION_GUARD", False):
        return
    problems = [
        message
        for message in run_checks(include_deployment_checks=True, tags=[Tags.security])
        if message.is_serious()
    ]
    if problems:
        lines = "\n".join(f"- {p.id}: {p.msg} {p.hint or ''}".rstrip() for p in problems)
        raise ImproperlyConfigured(f"Refusing to start in production:\n{lines}")
