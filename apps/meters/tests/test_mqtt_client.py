"""The tuned paho client (mqtt_client.Client) against paho as shipped, through a real Mosquitto:
what a subscriber receives must be the same message for message, and `ack_many` must
acknowledge exactly the messages it names (the broker redelivers the others)."""

from __future__ import annotations

import socket
import threading
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from apps.meters import mqtt_client
from tests.fixtures.mqtt import wait_for


class Collector:
    """A subscriber that keeps every message it receives."""

    def __init__(self, client: paho.Client, broker: mqtt_client.Broker, topic: str, **connect):
        self.client = client
        self.messages: list[paho.MQTTMessage] = []
        self.subscribed = threading.Event()
        client.on_message = lambda c, u, m: self.messages.append(m)
        client.on_connect = lambda c, *a: c.subscribe(topic, qos=2)
        client.on_subscribe = lambda *a: self.subscribed.set()
        mqtt_client.connect_client(client, broker, **connect)
        client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _stock(client_id: str, **kw) -> paho.Client:
    return paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        **kw,
    )


def _view(m: paho.MQTTMessage) -> tuple:
    props = m.properties
    user = getattr(props, "UserProperty", None) if props is not None else None
    response = getattr(props, "ResponseTopic", None) if props is not None else None
    return (m.topic, m.payload, m.qos, m.retain, user, response)


@pytest.fixture
def broker(mosquitto) -> mqtt_client.Broker:
    return mqtt_client.broker_from_url(mosquitto.url)


def test_the_tuned_client_receives_what_paho_receives(broker):
    """Small and large payloads (one larger than a 64 KiB read), an empty one, QoS 0, 1 and 2,
    retained, with and without MQTT v5 properties, and 2,000 small messages in a row (many
    packets per read): the tuned subscriber gets every message, in order, with the same topic,
    payload, QoS, retain flag and properties as a stock paho subscriber."""
    topic = f"t{uuid.uuid4().hex[:8]}"
    stock = Collector(_stock(f"stock-{topic}"), broker, f"{topic}/#")
    tuned = Collector(mqtt_client.make_client(f"tuned-{topic}"), broker, f"{topic}/#")
    pub = mqtt_client.make_client(f"pub-{topic}")
    mqtt_client.connect_client(pub, broker)
    pub.loop_start()

    with_props = Properties(PacketTypes.PUBLISH)
    with_props.UserProperty = [("site", "A-17")]
    with_props.ResponseTopic = f"{topic}/reply"
    sent = [
        (f"{topic}/a", b"x" * 200, 1, False, None),
        (f"{topic}/big", bytes(range(256)) * 600, 1, False, None),  # 153,600 bytes
        (f"{topic}/empty", b"", 1, False, None),
        (f"{topic}/q0", b"zero", 0, False, None),
        (f"{topic}/q2", b"two", 2, False, None),
        (f"{topic}/props", b"with properties", 1, False, with_props),
        (f"{topic}/retained", b"kept", 1, True, None),
    ] + [(f"{topic}/m/{i % 7}", f'{{"seq":{i}}}'.encode(), 1, False, None) for i in range(2000)]
    infos = [pub.publish(t, p, qos=q, retain=r, properties=pr) for t, p, q, r, pr in sent]
    for info in infos:
        info.wait_for_publish(10)

    assert wait_for(lambda: len(tuned.messages) >= len(sent) and len(stock.messages) >= len(sent))
    for c in (stock, tuned):
        c.close()
    pub.disconnect()
    pub.loop_stop()

    assert len(tuned.messages) == len(stock.messages) == len(sent)
    # QoS 2 reaches on_message at PUBREL, so only same-QoS order is fixed (asserted below).
    assert sorted(map(_view, tuned.messages)) == sorted(map(_view, stock.messages))
    got = {m.topic: m for m in tuned.messages}
    assert got[f"{topic}/big"].payload == bytes(range(256)) * 600
    assert got[f"{topic}/props"].properties.UserProperty == [("site", "A-17")]
    assert got[f"{topic}/a"].properties is None  # decoded without a Properties object
    assert [m.payload for m in tuned.messages if "/m/" in m.topic] == [
        f'{{"seq":{i}}}'.encode() for i in range(2000)
    ]


def test_ack_many_acknowledges_exactly_the_messages_it_names(broker):
    """A manual-ack subscriber with a persistent session acknowledges the even messages in one
    `ack_many` and disconnects: on reconnecting, the broker redelivers the odd ones and no
    even one."""
    topic = f"t{uuid.uuid4().hex[:8]}"
    client_id = f"acker-{topic}"
    first = Collector(
        mqtt_client.make_client(client_id, manual_ack=True), broker, f"{topic}/#", persistent=True
    )
    pub = mqtt_client.make_client(f"pub-{topic}")
    mqtt_client.connect_client(pub, broker)
    pub.loop_start()
    for i in range(300):
        pub.publish(f"{topic}/r", str(i).encode(), qos=1).wait_for_publish(10)
    assert wait_for(lambda: len(first.messages) == 300)
    first.client.ack_many([m.mid for m in first.messages if int(m.payload) % 2 == 0])
    # A barrier before leaving: the broker handles a connection's packets in order, so once it
    # acknowledges a publish sent after the PUBACKs, it has handled every one of them.
    barrier = first.client.publish(f"{topic}-barrier", b"", qos=1)
    barrier.wait_for_publish(10)
    assert barrier.is_published()
    first.close()

    again = Collector(
        mqtt_client.make_client(client_id, manual_ack=True), broker, f"{topic}/#", persistent=True
    )
    assert wait_for(lambda: len(again.messages) >= 150, timeout=10)
    redelivered = sorted(int(m.payload) for m in again.messages)
    again.client.ack_many([m.mid for m in again.messages])
    again.close()
    pub.disconnect()
    pub.loop_stop()
    assert redelivered == list(range(1, 300, 2))


@pytest.mark.parametrize(
    ("command", "packet"),
    [
        (0x30, b"\x00\x03a/b\x00hi"),  # QoS 0, no properties
        (0x3B, b"\x00\x03a/b\x01\x02\x00hi"),  # QoS 1, dup, retain
        (0x32, b"\x00\x03a/b\x01\x02\x03\x01\x01hi"),  # QoS 1 with a property
        (0x32, b"\x00\x03a/b\x01\x02\x00"),  # QoS 1, empty payload
        (0x36, b"\x00\x03a/b\x00\x05\x00hi"),  # QoS 3: a protocol error
        (0x32, b"\x00\x09a/b"),  # topic longer than the packet
        (0x32, b"\x00\x03a/b\x01"),  # packet id cut short
    ],
)
def test_a_crafted_publish_gets_the_same_result_as_from_paho(command, packet):
    """Well-formed or not, a PUBLISH packet gives the same return code (or exception) and the
    same delivered message as paho's own decoder."""

    def outcome(client: paho.Client) -> tuple:
        got: list[tuple] = []
        client.on_message = lambda c, u, m: got.append(
            (m.topic, m.payload, m.qos, m.dup, m.retain, m.mid)
        )
        client._in_packet = {"command": command, "packet": bytearray(packet)}
        try:
            result = client._handle_publish()
        except Exception as exc:  # noqa: BLE001 - compared below
            result = type(exc).__name__
        return result, got

    manual = {"manual_ack": True}  # no PUBACK to queue: both clients are unconnected
    assert outcome(mqtt_client.make_client("tuned", **manual)) == outcome(_stock("stock", **manual))


def test_buffered_socket_serves_packets_split_anywhere():
    """Reads as paho makes them (1 byte, 1 byte, then the body) over bytes that arrive in
    arbitrary pieces: the same bytes come out, `pending()` counts what is buffered, an empty
    socket raises BlockingIOError (paho waits) and a closed one returns b''."""
    a, b = socket.socketpair()
    b.setblocking(False)
    sock = mqtt_client.BufferedSocket(b)
    data = bytes(range(256)) * 1000
    a.sendall(data[:10])
    assert sock.recv(1) == data[:1]
    assert sock.pending() == 9
    assert sock.recv(100) == data[1:10]  # short read: what the buffer holds
    assert sock.pending() == 0
    with pytest.raises(BlockingIOError):
        sock.recv(1)
    sender = threading.Thread(target=lambda: (a.sendall(data[10:]), a.close()))
    sender.start()
    out = bytearray(data[:10])
    while len(out) < len(data):
        try:
            out += sock.recv(7)
        except BlockingIOError:
            continue
    sender.join(10)
    assert bytes(out) == data
    assert wait_for(lambda: _read_eof(sock), timeout=5)
    sock.close()


def _read_eof(sock: mqtt_client.BufferedSocket) -> bool:
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
