"""Broker URLs with credentials and TLS, the generated accounts and ACL, signed status messages
(pure checks; the broker itself is exercised in tests/integration/test_broker_acl.py)."""

from __future__ import annotations

import base64
import hashlib
import time

import coincurve
import pytest

from apps.meters.broker_accounts import (
    Account,
    broker_files,
    device_password,
    password_hash,
    service_account,
)
from apps.meters.device_messages import STATUS, sign_message, status_problem
from apps.meters.mqtt_client import Broker, broker_from_url
from apps.meters.signing import address_from_public_key


def test_broker_urls_carry_credentials_and_tls(settings):
    settings.MQTT_CA_FILE = "/etc/es/ca.pem"
    assert broker_from_url("mqtt://10.0.0.5") == Broker("10.0.0.5", 1883)
    tls = broker_from_url("mqtts://es-bridge:p%40ss%3Aw0rd@broker.coop:8884")
    assert (tls.host, tls.port, tls.username, tls.password) == (
        "broker.coop",
        8884,
        "es-bridge",
        "p@ss:w0rd",
    )
    assert tls.tls and tls.ca_file == "/etc/es/ca.pem"
    assert broker_from_url("mqtts://broker.coop").port == 8883
    assert "p@ss" not in repr(tls)  # never in a log line
    for bad in ("http://broker.coop", "broker.coop:1883", "mqtt://h:99999"):
        with pytest.raises(ValueError):
            broker_from_url(bad)


def test_password_hashes_are_mosquittos_pbkdf2_format():
    salt = bytes(range(12))
    line = password_hash("secret", salt=salt)
    _, kind, iterations, salt_b64, digest_b64 = line.split("$")
    assert (kind, iterations, base64.b64decode(salt_b64)) == ("7", "101", salt)
    expected = hashlib.pbkdf2_hmac("sha512", b"secret", salt, 101)
    assert base64.b64decode(digest_b64) == expected
    assert password_hash("secret") != password_hash("secret")  # a fresh salt each time


def test_acl_confines_each_device_to_its_own_topics_and_skips_unsafe_serials(settings):
    settings.MQTT_DEVICE_PASSWORD_KEY = "k1"
    files = broker_files(
        prefix="coop/v1",
        serials=["M-1", "M-2", "a/b", "+", "#", "$SYS", "x y", "es-bridge"],
        bridge=Account("es-bridge", "b"),
        commands=Account("es-commands", "c"),
    )
    users = [line.split(":")[0] for line in files.passwd.splitlines()]
    assert users == ["es-bridge", "es-commands", "M-1", "M-2"]
    assert {serial for serial, _ in files.skipped} == {"a/b", "+", "#", "$SYS", "x y", "es-bridge"}
    block = files.acl.split("user M-1\n")[1].split("\n\n")[0].splitlines()
    assert block == [
        "topic write coop/v1/meters/M-1/readings",
        "topic write coop/v1/meters/M-1/status",
        "topic read coop/v1/meters/M-1/config",
        "topic read coop/v1/devices/M-1/commands",
        "topic write coop/v1/devices/M-1/acks",
    ]
    assert device_password("M-1") not in files.passwd
    assert device_password("M-1") != device_password("M-2")
    settings.MQTT_DEVICE_PASSWORD_KEY = "k2"
    assert device_password("M-1") != device_password("M-1 ")  # rotating the key changes them
    with pytest.raises(ValueError, match="accounts of their own"):
        broker_files(prefix="p", serials=[], bridge=Account("x", "1"), commands=Account("x", "2"))
    with pytest.raises(ValueError, match="prefix"):
        broker_files(prefix="p/#", serials=[], bridge=Account("a", "1"), commands=Account("b", "2"))
    with pytest.raises(ValueError, match="no user:password"):
        service_account("mqtt://127.0.0.1:1883", "MQTT_BRIDGE_URL")


def test_status_messages_are_checked_one_reason_per_check():
    key = coincurve.PrivateKey()
    address = address_from_public_key(key.public_key.format(compressed=False))
    now = time.time()
    good = sign_message(STATUS, {"v": 1, "serial": "M-1", "sent_at": int(now)}, key.secret)

    def problem(doc, serial="M-1", device=address):
        found = status_problem(doc, topic_serial=serial, device_address=device, now=now)
        return found and found[0]

    assert problem(good) is None
    assert problem([good]) == "malformed"
    assert problem({**good, "v": "1"}) == "bad_version"
    assert problem({**good, "sent_at": "now"}) == "wrong_type"
    for never_stale in (float("nan"), float("inf"), True, now):  # signed, but no plain integer
        signed = sign_message(STATUS, {"v": 1, "serial": "M-1", "sent_at": never_stale}, key.secret)
        assert problem(signed) == "wrong_type"
    assert problem({k: v for k, v in good.items() if k != "signature"}) == "missing_signature"
    assert problem({**good, "signature": "0x1234"}) == "bad_signature"
    assert problem({**good, "firmware": "changed after signing"}) == "bad_signature"
    assert problem(good, device=None) == "unknown_meter"
    assert problem(good, device="") == "bad_signature"  # registered, but no key yet
    m2 = address_from_public_key(coincurve.PrivateKey().public_key.format(compressed=False))
    assert problem(good, serial="M-2", device=m2) == "bad_signature"  # M-2's key did not sign
    other = sign_message(STATUS, {"v": 1, "serial": "M-9", "sent_at": int(now)}, key.secret)
    assert problem(other) == "topic_mismatch"
    old = sign_message(STATUS, {"v": 1, "serial": "M-1", "sent_at": int(now) - 3600}, key.secret)
    assert problem(old) == "stale"
