"""Deployment checks of the broker connection (`manage.py check --deploy`; at start in
production): device traffic and the service accounts' passwords travel over TLS only, and the
devices' broker passwords derive from a secret of their own."""

from __future__ import annotations

from urllib.parse import urlparse

from django.conf import settings
from django.core.checks import Error

from apps.core.checks import deployment_check

BROKER_URL_SETTINGS = ("IOT_BROKER_URL", "MQTT_BRIDGE_URL", "MQTT_COMMANDS_URL")
_MIN_PASSWORD_KEY_LENGTH = 32
_MIN_PASSWORD_KEY_UNIQUE_CHARACTERS = 8


@deployment_check
def check_broker_security(app_configs=None, **kwargs) -> list[Error]:
    errors: list[Error] = []
    plain = [
        name
        for name in BROKER_URL_SETTINGS
        if urlparse(str(getattr(settings, name, "") or "")).scheme.lower() != "mqtts"
    ]
    if plain:
        errors.append(
            Error(
                f"{', '.join(plain)} {'is' if len(plain) == 1 else 'are'} not mqtts://: broker "
                "passwords and device traffic would cross the network unencrypted.",
                hint="Use mqtts://user:password@host:8883 (MQTT_CA_FILE for a private CA) and a "
                "TLS listener (`manage.py mosquitto_config --certfile … --keyfile …`).",
                id="energysphere.E311",
            )
        )
    key = str(settings.MQTT_DEVICE_PASSWORD_KEY or "")
    if (
        len(key) < _MIN_PASSWORD_KEY_LENGTH
        or len(set(key)) < _MIN_PASSWORD_KEY_UNIQUE_CHARACTERS
        or key == settings.SECRET_KEY
    ):
        errors.append(
            Error(
                "MQTT_DEVICE_PASSWORD_KEY is missing or a development value (short, "
                "low-entropy, or SECRET_KEY itself): the devices' broker passwords would derive "
                "from it.",
                hint=f"Set MQTT_DEVICE_PASSWORD_KEY to at least {_MIN_PASSWORD_KEY_LENGTH} "
                "random characters of its own, then re-run `manage.py mosquitto_config` and "
                "re-provision the devices' passwords.",
                id="energysphere.E312",
            )
        )
    return errors
