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
# Broker accounts: `mqtts://user:password@host:8883` (TLS) or `mqtt://…`; credentials come from the
# environment only. The bridge and the command sender (grid set points, device configuration) each
# log in with their own account; both default to IOT_BROKER_URL (a development broker without
# accounts). `manage.py mosquitto_config` writes the broker's password file and ACL from these
# URLs and the meter registry.
MQTT_BRIDGE_URL = _env("MQTT_BRIDGE_URL", default=IOT_BROKER_URL)
MQTT_COMMANDS_URL = _env("MQTT_COMMANDS_URL", default=IOT_BROKER_URL)
# CA bundle an mqtts:// broker's certificate is verified against (empty: the system's CAs).
MQTT_CA_FILE = _env("MQTT_CA_FILE", default="")
# Secret each device's broker password is derived from (HMAC of the serial; `manage.py
# mosquitto_config --device-password SERIAL` prints one for provisioning). Empty: derived from
# SECRET_KEY, so set it in production to rotate broker passwords independently.
MQTT_DEVICE_PASSWORD_KEY = _env("MQTT_DEVICE_PASSWORD_KEY", default="")
# HTTP gateway: readings per meter serial and minute, over every gateway; the excess is
# quarantined `rate_limited` (kept, re-processable) and the request answered 429.
METER_GATEWAY_READINGS_PER_SERIAL_PER_MINUTE = _env.int(
    "METER_GATEWAY_READINGS_PER_SERIAL_PER_MINUTE", default=200
)
# MQTT status messages per meter serial and minute the bridge checks and records; the first one
# over is quarantined `rate_limited`, the rest of that minute's are dropped unread (a flooding
# device cannot keep the bridge busy). A device normally reports its status once an hour.
METER_STATUS_PER_SERIAL_PER_MINUTE = _env.int("METER_STATUS_PER_SERIAL_PER_MINUTE", default=10)
# Private key (64 hex) that signs what the cooperative sends devices (grid set points, DR
# cancellations, meter configuration); empty: derived from SECRET_KEY (apps/meters/command_key.py).
GRID_COMMAND_KEY = _env("GRID_COMMAND_KEY", default="")
# A signed configuration message expires this long after it is sent; a device offline longer
# refuses the retained one as expired until the configuration is published again.
METER_CONFIG_TTL_S = _env.int("METER_CONFIG_TTL_S", default=30 * 86400)
