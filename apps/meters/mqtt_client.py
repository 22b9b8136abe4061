"""Small MQTT client boundary (paho-mqtt 2.x): topics, connection options, plain dataclasses.

Topics (prefix = settings.MQTT_TOPIC_PREFIX, e.g. "energysphere/v1"):
    <prefix>/meters/<serial>/readings   device → us, QoS 1, signed readings (or a gateway batch)
    <prefix>/meters/<serial>/status     device → us, firmware / config version (last seen)
    <prefix>/meters/<serial>/config     us → device, retained configuration
    <prefix>/devices/<serial>/commands  us → device, signed set points (apps.grid)
    <prefix>/devices/<serial>/acks      device → us, signed acknowledgements

Broker URLs: `mqtt://[user:password@]host[:1883]` or `mqtts://[user:password@]host[:8883]` (TLS,
verified against settings.MQTT_CA_FILE, else the system's CAs); user and password are
percent-decoded. Each role has its own URL (settings.MQTT_BRIDGE_URL, MQTT_COMMANDS_URL), so each
logs in with its own broker account (`manage.py mosquitto_config` writes the accounts and the ACL).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

SESSION_EXPIRY_S = 7 * 24 * 3600  # persistent session: the broker queues while we are down
RECEIVE_MAXIMUM = 65535  # in-flight QoS 1 messages the broker may send before our acks


SCHEMES = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None


def broker_from_url(url: str, *, ca_file: str | None = None) -> Broker:
    """The broker of `url` (see the module doc); ValueError for another scheme or a bad port.
    `ca_file` (default settings.MQTT_CA_FILE) is the CA bundle a `mqtts://` broker is verified
    against."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"broker URL scheme must be mqtt:// or mqtts://, not {scheme!r}")
    port = parsed.port or SCHEMES[scheme]  # ValueError for a port out of range
    tls = scheme == "mqtts"
    if tls and ca_file is None:
        from django.conf import settings

        ca_file = getattr(settings, "MQTT_CA_FILE", "") or None
    return Broker(
        parsed.hostname or "127.0.0.1",
        port,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password is not None else None,
        tls=tls,
        ca_file=(ca_file or None) if tls else None,
    )


def readings_topic(prefix: str, serial: str) -> str:
    return f"{prefix}/meters/{serial}/readings"


def status_topic(prefix: str, serial: str) -> str:
    return f"{prefix}/meters/{serial}/status"


def config_topic(prefix: str, serial: str) -> str:
    return f"{prefix}/meters/{serial}/config"


def device_command_topic(prefix: str, serial: str) -> str:
    return f"{prefix}/devices/{serial}/commands"


def device_ack_topic(prefix: str, serial: str) -> str:
    return f"{prefix}/devices/{serial}/acks"


def shared_subscriptions(prefix: str, group: str) -> list[str]:
    return [
        f"$share/{group}/{prefix}/meters/+/readings",
        f"$share/{group}/{prefix}/meters/+/status",
    ]


class BufferedSocket:
    """The client's TCP socket with a read buffer. paho reads each packet with at least three
    recv calls (command byte, remaining length, body), each a system call; here one recv of up
    to 64 KiB serves every packet it holds. `pending()` is paho's own hook (its TLS and
    WebSocket sockets have it): while it is non-zero, paho's loop reads on without select()."""

    __slots__ = ("_sock", "_buf", "_pos")

    def __init__(self, sock) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, n: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            buf = self._sock.recv(max(n, 65536))  # BlockingIOError when empty: paho waits
            pos = 0
            if not buf:
                self._buf, self._pos = b"", 0
                return b""  # closed by the broker
        end = pos + n
        self._buf, self._pos = buf, min(end, len(buf))
        return buf[pos:end]

    def pending(self) -> int:
        return len(self._buf) - self._pos

    def send(self, data) -> int:
        return self._sock.send(data)

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


_PUBACK = struct.Struct("!BBH")  # MQTT PUBACK: type 0x40, remaining length 2, packet id
_U16 = struct.Struct("!H").unpack_from


class Client(paho.Client):
    """paho-mqtt's client (pinned at 2.2.0) with its receive path made cheap enough for a
    subscriber taking tens of thousands of QoS 1 messages a second. As shipped, paho spends
    a third of its CPU per message on three system calls per packet and another third building an
    MQTT v5 Properties object for every PUBLISH, even one that carries none. Here (a fraction of
    that; bench `bare_subscriber_rate_tuned`, figures in bench/RESULTS.md):
    - reads go through `BufferedSocket` (TCP and Unix sockets; TLS and WebSockets as paho has them),
      and `loop_read` reads every complete packet already buffered, not one per select();
    - a QoS 0/1 PUBLISH without properties is decoded without a Properties object
      (`message.properties` is None); one with properties, and QoS 2, go through paho;
    - `ack_many` sends the PUBACKs of a whole batch as one write, not one packet (and one wake-up
      of paho's thread) per message.
    The tests in apps/meters/tests/test_mqtt_client.py hold it to paho's own results."""

    def _create_socket(self):
        sock = super()._create_socket()
        if self._ssl or self._transport == "websockets":
            return sock
        return BufferedSocket(sock)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        sock = self._sock
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and isinstance(sock, BufferedSocket):
            if self._sock is not sock or not sock.pending():
                break
            rc = super().loop_read(1)  # consumes at least the buffered command byte
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        header = self._in_packet["command"]
        packet = self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        if qos > 1 or self._protocol != paho.MQTTv5 or len(packet) < 3:
            return super()._handle_publish()  # QoS 2, and QoS 3 (a protocol error), as paho
        (topic_len,) = _U16(packet)
        pos = 2 + topic_len
        mid = 0
        if qos:
            if len(packet) < pos + 2:
                return super()._handle_publish()  # paho reports the malformed packet
            (mid,) = _U16(packet, pos)
            pos += 2
        if len(packet) <= pos or packet[pos] != 0:
            return super()._handle_publish()  # carries properties (or is malformed)
        message = paho.MQTTMessage(mid=mid, topic=bytes(packet[2 : 2 + topic_len]))
        message.dup = bool(header & 0x08)
        message.qos = qos
        message.retain = bool(header & 0x01)
        message.properties = None
        message.payload = bytes(packet[pos + 1 :])
        message.timestamp = paho.time_func()
        self._handle_on_message(message)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: Iterable[int]) -> MQTTErrorCode:
        """PUBACK each of `mids` (QoS 1, manual_ack) in one write."""
        packet = b"".join([_PUBACK.pack(paho.PUBACK, 2, mid) for mid in mids])
        if not packet:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return self._packet_queue(paho.PUBACK, packet, 0, 0)


def make_client(client_id: str, *, manual_ack: bool = False, persistent: bool = False) -> Client:
    client = Client(
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
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set(ca_certs=broker.ca_file)  # verifies the certificate and the host name
    props = Properties(PacketTypes.CONNECT)
    if persistent:
        props.SessionExpiryInterval = session_expiry
        props.ReceiveMaximum = RECEIVE_MAXIMUM
    client.connect(
        broker.host, broker.port, keepalive=30, clean_start=not persistent, properties=props
    )


def publish_json(client: paho.Client, topic: str, doc: dict, *, retain: bool = False, qos=1):
    return client.publish(topic, json.dumps(doc, separators=(",", ":")), qos=qos, retain=retain)
