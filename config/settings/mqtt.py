"""MQTT broker (meters publish signed readings; we publish device config and commands)."""

import environ

_env = environ.Env()

IOT_BROKER_URL = _env("IOT_BROKER_URL", default="mqtt://127.0.0.1:1883")
# Root of every topic we publish or subscribe to; tests use a unique prefix per run.
MQTT_TOPIC_PREFIX = _env("MQTT_TOPIC_PREFIX", default="energysphere/v1")
MQTT_SHARED_GROUP = _env("MQTT_SHARED_GROUP", default="ingest")
MQTT_MAX_MESSAGE_BYTES = _env.int("MQTT_MAX_MESSAGE_BYTES", default=256 * 1024)
# Ingest bounds: a reading may start at most this many days before its meter's install date
# (active_from); a batch whose processing never finishes is quarantined whole after this many
# attempts instead of being re-queued forever.
METER_READING_MAX_DAYS_BEFORE_INSTALL = _env.int(
    "METER_READING_MAX_DAYS_BEFORE_INSTALL", default=31
)
METER_INGEST_MAX_ATTEMPTS = _env.int("METER_INGEST_MAX_ATTEMPTS", default=5)
# HTTP gateway: requests per gateway (token) and minute; more are answered 429.
METER_GATEWAY_REQUESTS_PER_MINUTE = _env.int("METER_GATEWAY_REQUESTS_PER_MINUTE", default=600)
