"""MQTT boundary for device set points (reuses the meters app's paho-mqtt 2.x helpers).

Topics (prefix = settings.MQTT_TOPIC_PREFIX):
    <prefix>/devices/<serial>/commands   us → device, QoS 1: {"command_id", "serial", "seq",
                                         "expires_at", "plan", "start", "step_seconds",
                                         "setpoints_w": [...], "signature"} signed by the
                                         cooperative's command key
    <prefix>/devices/<serial>/acks       device → us, QoS 1: {"command_id", "serial", "seq",
                                         "status": "accepted" | "rejected", "reason"?,
                                         "signature"} signed by the device key
(signatures: apps/grid/command_signing.py)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from apps.meters.command_key import (  # noqa: F401 - re-exported for the grid app
    cooperative_command_address,
    cooperative_command_key,
)


@dataclass(frozen=True)
class CommandMessage:
    serial: str
    payload: dict


def command_topic(serial: str, prefix: str | None = None) -> str:
    return f"{prefix or settings.MQTT_TOPIC_PREFIX}/devices/{serial}/commands"


def ack_topic(serial: str, prefix: str | None = None) -> str:
    return f"{prefix or settings.MQTT_TOPIC_PREFIX}/devices/{serial}/acks"


def ack_subscription(prefix: str | None = None) -> str:
    return f"{prefix or settings.MQTT_TOPIC_PREFIX}/devices/+/acks"


def publish_commands(messages: list[CommandMessage], *, timeout: float = 10.0) -> list[str]:
    """Publish at QoS 1 and wait for the broker's PUBACKs; return the serials published."""
    from apps.meters.mqtt_client import broker_from_url, connect_client, make_client

    if not messages:
        return []
    client = make_client(f"grid-cmd-{uuid.uuid4().hex[:10]}")
    connect_client(client, broker_from_url(settings.MQTT_COMMANDS_URL))
    client.loop_start()
    try:
        infos = [
            (m.serial, client.publish(command_topic(m.serial), json.dumps(m.payload), qos=1))
            for m in messages
        ]
        done = []
        for serial, info in infos:
            info.wait_for_publish(timeout=timeout)
            if info.is_published():
                done.append(serial)
        return done
    finally:
        client.disconnect()
        client.loop_stop()


def parse_ack(topic: str, payload: bytes) -> tuple[str, dict] | None:
    """(serial, document) of an acknowledgement, or None when it is not one of ours."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[-1] != "acks" or parts[-3] != "devices":
        return None
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or "command_id" not in doc:
        return None
    return parts[-2], doc


def listen_acks(on_ack: Callable[[str, dict], None], *, stop: Callable[[], bool]) -> None:
    """Subscribe to every device's ack topic and call `on_ack(serial, doc)` until `stop()`."""
    import time

    from apps.meters.mqtt_client import broker_from_url, connect_client, make_client

    client = make_client(f"grid-acks-{uuid.uuid4().hex[:10]}")

    def on_connect(c, userdata, flags, reason_code, properties=None):
        c.subscribe(ack_subscription(), qos=1)

    def on_message(c, userdata, msg):
        parsed = parse_ack(msg.topic, msg.payload)
        if parsed is not None:
            on_ack(*parsed)

    client.on_connect = on_connect
    client.on_message = on_message
    connect_client(client, broker_from_url(settings.MQTT_COMMANDS_URL))
    client.loop_start()
    try:
        while not stop():
            time.sleep(0.1)
    finally:
        client.disconnect()
        client.loop_stop()
