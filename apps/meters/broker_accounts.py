"""Broker accounts and ACL of a project-managed Mosquitto (`manage.py mosquitto_config`).

Every device logs in as its meter serial with a password derived from the cooperative's secret
(`device_password`: HMAC-SHA256 of the serial under settings.MQTT_DEVICE_PASSWORD_KEY, so nothing
per device is stored and a device can be re-provisioned at any time); the bridge and the command
sender log in with the accounts named in settings.MQTT_BRIDGE_URL and MQTT_COMMANDS_URL. The
password file holds only PBKDF2-SHA512 hashes in Mosquitto 2's own format (`$7$`), the ACL grants:

- device `<serial>`: publish only on `<prefix>/meters/<serial>/readings|status` and
  `<prefix>/devices/<serial>/acks`; read only `<prefix>/meters/<serial>/config` and
  `<prefix>/devices/<serial>/commands`;
- the bridge: read every meter's readings and status;
- the command sender: publish configurations and commands, read acknowledgements.

A serial that could widen a topic (`+`, `#`, `/`, a leading `$`, spaces, control characters) or
that names a service account is left out (its device cannot log in) and reported.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from apps.meters import mqtt_client

SAFE_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
SAFE_PREFIX = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default; device passwords are 256-bit random


def device_password_key() -> bytes:
    configured = settings.MQTT_DEVICE_PASSWORD_KEY
    if configured:
        return configured.encode()
    seed = b"energysphere:mqtt-device-password:" + settings.SECRET_KEY.encode()
    return hashlib.sha256(seed).digest()


def device_password(serial: str) -> str:
    """The broker password of device `serial` (43 URL-safe characters)."""
    mac = hmac.new(device_password_key(), b"mqtt-device:" + serial.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def password_hash(password: str, *, salt: bytes | None = None) -> str:
    """Mosquitto 2's `$7$` hash (PBKDF2-HMAC-SHA512), as `mosquitto_passwd` writes it."""
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


@dataclass(frozen=True)
class Account:
    username: str
    password: str


@dataclass(frozen=True)
class BrokerFiles:
    passwd: str
    acl: str
    skipped: list[tuple[str, str]]  # (serial, why)


def service_account(url: str, role: str) -> Account:
    broker = mqtt_client.broker_from_url(url, ca_file="")
    if not broker.username or not broker.password:
        raise ValueError(f"the {role} URL carries no user:password (mqtt[s]://user:pass@host)")
    if not SAFE_SERIAL.fullmatch(broker.username):
        raise ValueError(f"the {role} user name must match {SAFE_SERIAL.pattern}")
    return Account(broker.username, broker.password)


def broker_files(
    *, prefix: str, serials: Iterable[str], bridge: Account, commands: Account
) -> BrokerFiles:
    """The password file and the ACL file for `serials` (see the module doc)."""
    if not SAFE_PREFIX.fullmatch(prefix):
        raise ValueError(f"topic prefix {prefix!r} must be plain path segments (no + # $ spaces)")
    if bridge.username == commands.username:
        raise ValueError("the bridge and the command sender need accounts of their own")
    services = {bridge.username, commands.username}
    passwd = [f"{a.username}:{password_hash(a.password)}" for a in (bridge, commands)]
    acl = [
        "# Written by `manage.py mosquitto_config`; regenerate after registering meters.",
        f"user {bridge.username}",
        f"topic read {prefix}/meters/+/readings",
        f"topic read {prefix}/meters/+/status",
        "",
        f"user {commands.username}",
        f"topic write {prefix}/meters/+/config",
        f"topic write {prefix}/devices/+/commands",
        f"topic read {prefix}/devices/+/acks",
        "",
    ]
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for serial in sorted(set(serials)):
        if not SAFE_SERIAL.fullmatch(serial):
            skipped.append((serial, f"not a safe topic segment ({SAFE_SERIAL.pattern})"))
            continue
        if serial in services:
            skipped.append((serial, "same name as a service account"))
            continue
        seen.add(serial)
        passwd.append(f"{serial}:{password_hash(device_password(serial))}")
        acl += [
            f"user {serial}",
            f"topic write {prefix}/meters/{serial}/readings",
            f"topic write {prefix}/meters/{serial}/status",
            f"topic read {prefix}/meters/{serial}/config",
            f"topic read {prefix}/devices/{serial}/commands",
            f"topic write {prefix}/devices/{serial}/acks",
            "",
        ]
    return BrokerFiles("\n".join(passwd) + "\n", "\n".join(acl), skipped)


def mosquitto_conf(
    *,
    directory: str,
    port: int,
    bind: str = "",
    certfile: str = "",
    keyfile: str = "",
    cafile: str = "",
    run_as: str = "",
) -> str:
    """A Mosquitto 2 configuration using the files of `broker_files` in `directory`; TLS on the
    listener when a certificate and key are given. Started as root, Mosquitto reads the files as
    `run_as` (its default: the `mosquitto` user), which must be able to read them."""
    lines = [
        "# Written by `manage.py mosquitto_config`.",
        "per_listener_settings false",
        *([f"user {run_as}"] if run_as else []),
        "allow_anonymous false",
        f"password_file {directory}/passwd",
        f"acl_file {directory}/acl",
        f"listener {port}{' ' + bind if bind else ''}",
        "max_inflight_messages 0",
        "persistence true",
        f"persistence_location {directory}/",
    ]
    if certfile and keyfile:
        lines += [f"certfile {certfile}", f"keyfile {keyfile}", "tls_version tlsv1.2"]
        if cafile:
            lines.append(f"cafile {cafile}")
    return "\n".join(lines) + "\n"
