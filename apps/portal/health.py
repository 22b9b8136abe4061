"""Component health checks used by /healthz and `make run`."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import redis
from django.conf import settings
from django.db import connection

from apps.chain.client import chain_health


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # noqa: BLE001 - report any failure as the component's state
        return f"error: {exc.__class__.__name__}: {exc}"


def check_redis() -> str:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1)
        client.ping()
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"error: {exc.__class__.__name__}: {exc}"


def check_mqtt() -> str:
    url = urlparse(settings.IOT_BROKER_URL)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 1883), timeout=1):
            return "ok"
    except OSError as exc:
        return f"error: {exc}"


def check_chain() -> str:
    return chain_health()


def health_report() -> dict[str, str]:
    return {
        "database": check_database(),
        "redis": check_redis(),
        "mqtt": check_mqtt(),
        "chain": check_chain(),
    }
