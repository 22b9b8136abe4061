"""Small MQTT client boundary (paho-mqtt 2.x): topics, connection options, plain dataclasses.

Topics (prefix = settings.MQTT_TOPIC_PREFIX, e.g. "energysphere/v1"):
    <prefix>/meters/<serial>/readings   device → us, QoS 1, signed readings (or a gateway batch)
    <prefix>/meters/<serial>/status     device → us, firmware / config version (last seen)
    <prefix>/meters/<serial>/config     us → device, retained configuration
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlparse

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

SESSION_EXPIRY_S = 7 * 24 * 3600  # persistent session: the broker queues while we are down
RECEIVE_MAXIMUM = 65535  # in-flight QoS 1 messages the broker may send before our acks


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int


def broker_from_url(url: str) -> Broker:
    parsed = urlparse(url)
    return Broker(parsed.hostname or "127.0.0.1", parsed.port or 1883)


def readings_topic(prefix: str, serial: str) -> str:
    return f"{prefix}/meters/{serial}/readings"


def status_topic(prefix: str, serial: str) -> str:
    return f"{prefix}/meters/{serial}/status"


def config_topic(prefix: str, serial: str) -> str:
    return f"{prefix}/meters/{serial}/config"


def shared_subscriptions(prefix: str, group: str) -> list[str]:
    return [
        f"$share/{group}/{prefix}/meters/+/readings",
        f"$share/{group}/{prefix}/meters/+/status",
    ]


def make_client(
    client_id: str, *, manual_ack: bool = False, persistent: bool = False
) -> paho.Client:
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(1000)
    return client


def connect_client(
    client: paho.Client,
    broker: Broker,
    *,
    persistent: bool = False,
    session_expiry: int = SESSION_EXPIRY_S,
) -> None:
    props = Properties(PacketTypes.CONNECT)
    if persistent:
        props.SessionExpiryInterval = session_expiry
        props.ReceiveMaximum = RECEIVE_MAXIMUM
    client.connect(
        broker.host, broker.port, keepalive=30, clean_start=not persistent, properties=props
    )


def publish_json(client: paho.Client, topic: str, doc: dict, *, retain: bool = False, qos=1):
    return client.publish(topic, json.dumps(doc, separators=(",", ":")), qos=qos, retain=retain)
