"""Acceptance 3 of issue 17: a second Mosquitto on a free port, configured by
`manage.py mosquitto_config` (password file with hashed passwords + ACL from the meter registry),
with the real bridge, the real PostgreSQL and a simulated device process.

- device A's credentials cannot publish on device B's topics nor read B's configuration;
- unsigned and wrongly signed status messages and acks are quarantined with their reason;
- a replayed command is refused by the simulated device (and its refusal is signed);
- the simulated device applies signed configuration messages, refuses replayed or unsigned ones."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import coincurve
import pytest
from django.core.management import call_command

from apps.grid.command_signing import ACK, message_signer
from apps.meters import mqtt_client
from apps.meters.broker_accounts import device_password
from apps.meters.models import Meter, Quarantine, Reading
from apps.meters.simulator import status_doc
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.mqtt import ROOT, Publisher, free_port, wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.django_db(transaction=True)]

T0 = (int(time.time()) // 86400 - 10) * 86400
Q = 900


class AclBroker:
    def __init__(self, directory, port: int) -> None:
        self.dir, self.port = directory, port
        self.bridge_password = uuid.uuid4().hex
        self.commands_password = uuid.uuid4().hex
        self.proc: subprocess.Popen | None = None

    def url(self, user: str, password: str) -> str:
        return f"mqtt://{user}:{password}@127.0.0.1:{self.port}"

    def device_url(self, serial: str) -> str:
        return self.url(serial, device_password(serial))

    @property
    def bridge_url(self) -> str:
        return self.url("es-bridge", self.bridge_password)

    @property
    def commands_url(self) -> str:
        return self.url("es-commands", self.commands_password)


@pytest.fixture
def acl_broker(tmp_path, mqtt_prefix, settings):
    """`start()` writes the configuration for the meters registered so far and starts Mosquitto."""
    broker = AclBroker(tmp_path, free_port())
    settings.MQTT_BRIDGE_URL = broker.bridge_url
    settings.MQTT_COMMANDS_URL = broker.commands_url
    settings.MQTT_TOPIC_PREFIX = mqtt_prefix

    def start(*, tls: bool = False) -> AclBroker:
        certs = _throwaway_tls(tmp_path) if tls else {}
        call_command("mosquitto_config", out=str(tmp_path), port=broker.port, bind="127.0.0.1",
                     prefix=mqtt_prefix, run_as="root" if os.geteuid() == 0 else "",
                     **certs)  # fmt: skip
        conf = (tmp_path / "mosquitto.conf").read_text()
        assert "allow_anonymous false" in conf and "acl_file" in conf
        assert "$7$" in (tmp_path / "passwd").read_text()  # hashed, never the password itself
        first = Meter.objects.first()
        assert device_password(first.serial) not in (tmp_path / "passwd").read_text()
        broker.proc = subprocess.Popen(["mosquitto", "-c", str(tmp_path / "mosquitto.conf")])
        assert wait_for(lambda: _listening(broker.port), timeout=10), "mosquitto did not start"
        return broker

    yield start
    if broker.proc and broker.proc.poll() is None:
        broker.proc.terminate()
        broker.proc.wait(10)


def _throwaway_tls(directory) -> dict:
    """A CA made for this test and a certificate for 127.0.0.1 signed by it (files in
    `directory`): the mosquitto_config options."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    files = {
        "cafile": ca.public_bytes(pem),
        "certfile": cert.public_bytes(pem),
        "keyfile": key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),  # fmt: skip
    }
    for option, data in files.items():
        (directory / f"{option}.pem").write_bytes(data)
    return {option: str(directory / f"{option}.pem") for option in files}


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Device:
    """A paho client logged in with one account, recording every PUBACK/SUBACK reason code."""

    def __init__(self, url: str) -> None:
        self.connect_rc = None
        self.acks: dict[int, int] = {}
        self.subacks: list[int] = []
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt_client.make_client(f"acl-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = self._on_connect
        self.client.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc.value)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.extend(
            rc.value for rc in rcs
        )
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.reconnect_delay_set(30, 30)  # a refused login is not retried in the test
        mqtt_client.connect_client(self.client, mqtt_client.broker_from_url(url))
        self.client.loop_start()
        wait_for(lambda: self.connect_rc is not None, timeout=10)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connect_rc = reason_code.value

    def publish(self, topic: str, doc) -> int:
        payload = doc if isinstance(doc, bytes) else json.dumps(doc)
        info = self.client.publish(topic, payload, qos=1)
        assert wait_for(lambda: info.mid in self.acks, timeout=10), f"no PUBACK on {topic}"
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> int:
        before = len(self.subacks)
        self.client.subscribe(topic, qos=1)
        assert wait_for(lambda: len(self.subacks) > before, timeout=10)
        return self.subacks[-1]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


NOT_AUTHORIZED = 0x87
GRANTED_QOS1 = 1


@pytest.fixture
def devices():
    made: list[Device] = []

    def connect(url: str) -> Device:
        made.append(Device(url))
        return made[-1]

    yield connect
    for device in made:
        device.close()


def test_device_credentials_reach_only_its_own_topics(acl_broker, devices, bridge_factory,
                                                      mqtt_prefix):  # fmt: skip
    a, b = MeterFactory(), MeterFactory()
    broker = acl_broker()
    bridge_factory(broker=broker.bridge_url)  # the bridge logs in with its own account
    reading = Publisher.reading  # signs like the device
    dev_a = devices(broker.device_url(a.serial))
    assert dev_a.connect_rc == 0
    own = mqtt_client.readings_topic(mqtt_prefix, a.serial)
    theirs = mqtt_client.readings_topic(mqtt_prefix, b.serial)
    assert dev_a.publish(own, reading(a, T0, 100)) == 0
    # B's correctly signed reading (captured by A) on B's topic: the broker refuses it
    assert dev_a.publish(theirs, reading(b, T0, 999)) == NOT_AUTHORIZED
    b_status = status_doc(b.serial, b.test_key, now=time.time())
    assert dev_a.publish(mqtt_client.status_topic(mqtt_prefix, b.serial), b_status) == (
        NOT_AUTHORIZED
    )
    assert dev_a.publish(mqtt_client.config_topic(mqtt_prefix, a.serial), {}) == NOT_AUTHORIZED
    # ... and on A's own topic it is stored nowhere but in the quarantine
    assert dev_a.publish(own, reading(b, T0 + Q, 998)) == 0
    assert wait_for(lambda: Quarantine.objects.filter(reason="topic_mismatch").exists())
    assert wait_for(lambda: Reading.objects.filter(meter=a).count() == 1)
    assert not Reading.objects.filter(meter=b).exists()
    mismatch = Quarantine.objects.get(reason="topic_mismatch")
    assert (mismatch.serial, mismatch.topic) == (b.serial, own)
    # A reads its own configuration and commands, not B's nor anyone's readings (Mosquitto
    # grants the subscription and filters each message by the ACL)
    sender = devices(broker.commands_url)
    for meter in (a, b):
        for topic in (mqtt_client.config_topic(mqtt_prefix, meter.serial),
                      mqtt_client.device_command_topic(mqtt_prefix, meter.serial)):  # fmt: skip
            info = sender.client.publish(topic, meter.serial, qos=1, retain=True)
            assert wait_for(info.is_published, timeout=10)
    for topic in (f"{mqtt_prefix}/meters/+/config", f"{mqtt_prefix}/devices/+/commands",
                  f"{mqtt_prefix}/meters/+/readings", f"{mqtt_prefix}/#"):  # fmt: skip
        dev_a.subscribe(topic)
    assert dev_a.publish(own, reading(a, T0 + 3 * Q, 100)) == 0  # A's own reading, not echoed
    time.sleep(1)
    assert {payload for _, payload in dev_a.messages} == {a.serial.encode()}
    assert sorted(t for t, _ in dev_a.messages) == sorted(
        [mqtt_client.config_topic(mqtt_prefix, a.serial)] * 2
        + [mqtt_client.device_command_topic(mqtt_prefix, a.serial)] * 2
    )  # its own two topics, through "+" and through "#"
    for topic in [mqtt_client.config_topic(mqtt_prefix, m.serial) for m in (a, b)] + [
        mqtt_client.device_command_topic(mqtt_prefix, m.serial) for m in (a, b)
    ]:
        sender.client.publish(topic, b"", qos=1, retain=True)  # clear the retained messages
    # a wrong password, B's password for A's name, and no account at all are refused at login
    # (Mosquitto answers "not authorized" to each, without telling which part was wrong)
    assert devices(broker.url(a.serial, "guess")).connect_rc == NOT_AUTHORIZED
    assert devices(broker.url(a.serial, device_password(b.serial))).connect_rc == NOT_AUTHORIZED
    assert devices(f"mqtt://127.0.0.1:{broker.port}").connect_rc == NOT_AUTHORIZED
    # the bridge's account cannot publish readings
    bridge_account = devices(broker.bridge_url)
    assert bridge_account.publish(own, reading(a, T0 + 2 * Q, 100)) == NOT_AUTHORIZED


def test_unsigned_or_wrongly_signed_status_is_quarantined(acl_broker, devices, bridge_factory,
                                                          mqtt_prefix):  # fmt: skip
    a, b = MeterFactory(), MeterFactory()
    broker = acl_broker()
    bridge_factory(broker=broker.bridge_url)
    dev_a = devices(broker.device_url(a.serial))
    topic = mqtt_client.status_topic(mqtt_prefix, a.serial)
    now = time.time()
    good = status_doc(a.serial, a.test_key, now=now, firmware="9.9.9")
    unsigned = {k: v for k, v in good.items() if k != "signature"}
    forger = coincurve.PrivateKey().secret
    sent = [
        ({**unsigned, "firmware": "unsigned"}, "missing_signature"),
        (status_doc(a.serial, forger, now=now, firmware="forged"), "bad_signature"),
        ({**good, "firmware": "tampered"}, "bad_signature"),
        (status_doc(b.serial, a.test_key, now=now, firmware="other"), "topic_mismatch"),
        (status_doc(a.serial, a.test_key, now=now - 3600, firmware="old"), "stale"),
        (b"{nope", "malformed"),
    ]
    for doc, _reason in sent:
        assert dev_a.publish(topic, doc) == 0
    assert wait_for(lambda: Quarantine.objects.filter(topic=topic).count() == len(sent))
    assert sorted(Quarantine.objects.filter(topic=topic).values_list("reason", flat=True)) == (
        sorted(reason for _, reason in sent)
    )
    meter = Meter.objects.get(pk=a.pk)
    assert meter.last_seen is None and meter.firmware_version != "9.9.9"  # nothing counted
    assert dev_a.publish(topic, good) == 0
    assert wait_for(lambda: Meter.objects.get(pk=a.pk).firmware_version == "9.9.9")


@pytest.fixture
def device_process(mqtt_prefix):
    started: list[subprocess.Popen] = []

    def start(serial: str, key: bytes, broker_url: str, cooperative: str) -> subprocess.Popen:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
               "DEVICE_KEY": key.hex(), "DEVICE_BROKER_URL": broker_url}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "simulate_device", serial,
             "--cooperative-address", cooperative, "--prefix", mqtt_prefix],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(proc)
        line = proc.stdout.readline()
        assert "subscribed (Granted QoS 1)" in line, line
        return proc

    yield start
    for proc in started:
        proc.terminate()
        # Drain its stdout while it stops: a device blocked writing to a full pipe cannot exit.
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise


def test_replayed_command_is_refused_by_the_device_and_bad_acks_are_quarantined(
    acl_broker, devices, device_process, mqtt_prefix, monkeypatch
):
    from apps.grid import commands_mqtt
    from apps.grid.commands_mqtt import cooperative_command_address
    from apps.grid.models import DeviceCommand
    from apps.grid.services import (
        device_command_acknowledge,
        device_commands_publish,
        dispatch_plan_create,
    )
    from apps.grid.tests.factories import EVChargerFactory

    meter = MeterFactory()
    charger = EVChargerFactory(available_from_hour=0, serial=meter.serial)
    charger.meter = meter
    charger.save(update_fields=["meter"])
    broker = acl_broker()
    proc = device_process(meter.serial, meter.test_key, broker.device_url(meter.serial),
                          cooperative_command_address())  # fmt: skip
    # The grid's ack listener, as `manage.py grid_command_acks` runs it (command account).
    stop, listening = threading.Event(), threading.Event()

    def on_ack(serial: str, doc: dict) -> None:
        listening.set()
        device_command_acknowledge(
            serial=serial,
            command_id=str(doc["command_id"]),
            accepted=doc.get("status") == "accepted",
            detail=doc,
        )

    listener = threading.Thread(target=commands_mqtt.listen_acks, args=(on_ack,),
                                kwargs={"stop": stop.is_set}, daemon=True)  # fmt: skip
    listener.start()
    dev = devices(broker.device_url(meter.serial))
    ack_topic = mqtt_client.device_ack_topic(mqtt_prefix, meter.serial)
    probe = {"command_id": str(uuid.uuid4()), "serial": meter.serial}  # an unknown command
    assert wait_for(lambda: dev.publish(ack_topic, probe) == 0 and listening.wait(0.3))
    acks = devices(broker.commands_url)  # the test watches the acks with the command account
    assert acks.subscribe(mqtt_client.device_ack_topic(mqtt_prefix, "+")) == GRANTED_QOS1
    sent: list = []
    real_publish = commands_mqtt.publish_commands
    monkeypatch.setattr(  # records what the grid publishes; the broker is the real one
        commands_mqtt, "publish_commands", lambda msgs: sent.extend(msgs) or real_publish(msgs)
    )
    try:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        plan = dispatch_plan_create(start=now + timedelta(hours=1), force=True)
        device_commands_publish(plan_id=plan.pk)
        assert len(sent) == 1
        command = DeviceCommand.objects.get(plan=plan)
        assert proc.stdout.readline().strip() == f"applied {command.command_id}"
        assert wait_for(lambda: DeviceCommand.objects.get(pk=command.pk).status == "acknowledged")
        # The same signed command again (a replay): the device refuses it, and says so signed.
        assert real_publish(sent) == [meter.serial]
        assert proc.stdout.readline().strip() == f"refused {command.command_id}: replayed"
        assert wait_for(lambda: len(acks.messages) == 2)
        docs = [json.loads(payload) for _, payload in acks.messages]
        assert [(d["status"], d.get("reason")) for d in docs] == [
            ("accepted", None),
            ("rejected", "replayed"),
        ]
        assert {message_signer(ACK, d) for d in docs} == {meter.address}
        assert DeviceCommand.objects.get(pk=command.pk).status == "acknowledged"
        # Unsigned and wrongly signed acks from the device's own account: quarantined.
        unsigned = {k: v for k, v in docs[0].items() if k != "signature"}
        from apps.grid.command_signing import sign_message

        forged = sign_message(ACK, unsigned, coincurve.PrivateKey().secret)
        assert dev.publish(ack_topic, unsigned) == 0
        assert dev.publish(ack_topic, forged) == 0
        assert wait_for(lambda: Quarantine.objects.filter(topic=ack_topic).count() == 2)
        reasons = Quarantine.objects.filter(topic=ack_topic).values_list("reason", flat=True)
        assert sorted(reasons) == ["bad_signature", "missing_signature"]
    finally:
        stop.set()
        listener.join(5)


def test_tls_listener_verifies_against_the_configured_ca(acl_broker, devices, settings, tmp_path):
    meter = MeterFactory()
    broker = acl_broker(tls=True)
    tls_url = broker.device_url(meter.serial).replace("mqtt://", "mqtts://")
    settings.MQTT_CA_FILE = str(tmp_path / "cafile.pem")
    device = devices(tls_url)
    assert device.connect_rc == 0  # TLS, certificate verified against the CA file, logged in
    assert device.client._ssl  # really over TLS
    topic = mqtt_client.status_topic(settings.MQTT_TOPIC_PREFIX, meter.serial)
    accepted = device.publish(topic, status_doc(meter.serial, meter.test_key, now=time.time()))
    assert accepted == 0x10  # accepted (MQTT 5 "no matching subscribers": no bridge runs here)
    # Without the CA (the system's CAs do not know it) the handshake fails: nothing connects.
    settings.MQTT_CA_FILE = ""
    with pytest.raises(ssl.SSLError):
        devices(tls_url)
    # Plain MQTT on the TLS port is not spoken either.
    assert devices(broker.device_url(meter.serial)).connect_rc is None


def test_the_device_applies_signed_configurations_and_refuses_replayed_or_unsigned_ones(
    acl_broker, devices, device_process, mqtt_prefix
):
    from apps.meters.command_key import cooperative_command_address
    from apps.meters.services import meter_configs_publish

    meter = MeterFactory()
    broker = acl_broker()
    meter_configs_publish(meters=[meter])  # retained, with the command sender's account
    proc = device_process(meter.serial, meter.test_key, broker.device_url(meter.serial),
                          cooperative_command_address())  # fmt: skip
    assert proc.stdout.readline().strip() == "configured seq 1"
    topic = mqtt_client.config_topic(mqtt_prefix, meter.serial)
    listener = devices(broker.device_url(meter.serial))  # what the device got (its account)
    assert listener.subscribe(topic) == GRANTED_QOS1
    assert wait_for(lambda: len(listener.messages) == 1)
    signed = json.loads(listener.messages[0][1])
    sender = devices(broker.commands_url)  # only the command sender may publish it
    assert sender.publish(topic, signed) == 0  # the same signed configuration again
    assert proc.stdout.readline().strip() == "refused config seq 1: replayed"
    unsigned = {**{k: v for k, v in signed.items() if k != "signature"}, "seq": 5}
    assert sender.publish(topic, unsigned) == 0
    assert proc.stdout.readline().strip() == "refused config seq 5: unsigned"
    meter_configs_publish(meters=[Meter.objects.get(pk=meter.pk)])
    assert proc.stdout.readline().strip() == "configured seq 2"
