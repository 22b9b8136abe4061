"""`manage.py mosquitto_config --out DIR`: the production broker's configuration, password file and
ACL from the meter registry (per-device accounts; see apps/meters/broker_accounts.py).
`--device-password SERIAL` prints the broker password to provision into one device."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.meters.broker_accounts import (
    SAFE_SERIAL,
    broker_files,
    device_password,
    mosquitto_conf,
    service_account,
)
from apps.meters.selectors import meter_registry


class Command(BaseCommand):
    help = (
        "Write mosquitto.conf, passwd (hashed) and acl for the registered meters: each device may "
        "publish only under its own serial; the bridge and the command sender get their own "
        "accounts (from MQTT_BRIDGE_URL and MQTT_COMMANDS_URL)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", help="directory for mosquitto.conf, passwd and acl")
        parser.add_argument("--port", type=int, default=8883)
        parser.add_argument("--bind", default="", help="listen address (default: all)")
        parser.add_argument("--prefix", default=settings.MQTT_TOPIC_PREFIX)
        parser.add_argument("--certfile", default="", help="TLS certificate of the listener")
        parser.add_argument("--keyfile", default="", help="TLS key of the listener")
        parser.add_argument("--cafile", default="", help="CA of the listener's certificate")
        parser.add_argument(
            "--run-as", default="", help="user Mosquitto runs as when started as root"
        )
        parser.add_argument("--device-password", metavar="SERIAL",
                            help="print this device's broker password and exit")  # fmt: skip

    def handle(self, *args, **opts):
        if opts["device_password"]:
            serial = opts["device_password"]
            if not SAFE_SERIAL.fullmatch(serial):
                raise CommandError(f"{serial!r} cannot be a broker account ({SAFE_SERIAL.pattern})")
            self.stdout.write(device_password(serial))
            return
        if not opts["out"]:
            raise CommandError("--out DIR is required (or --device-password SERIAL)")
        if bool(opts["certfile"]) != bool(opts["keyfile"]):
            raise CommandError("TLS needs both --certfile and --keyfile")
        try:
            bridge = service_account(settings.MQTT_BRIDGE_URL, "MQTT_BRIDGE_URL")
            commands = service_account(settings.MQTT_COMMANDS_URL, "MQTT_COMMANDS_URL")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        now = timezone.now()
        serials = [m.serial for m in meter_registry() if m.active_to is None or m.active_to > now]
        try:
            files = broker_files(
                prefix=opts["prefix"], serials=serials, bridge=bridge, commands=commands
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        out = Path(opts["out"]).resolve()
        out.mkdir(parents=True, exist_ok=True)
        conf = mosquitto_conf(directory=str(out), port=opts["port"], bind=opts["bind"],
                              certfile=opts["certfile"], keyfile=opts["keyfile"],
                              cafile=opts["cafile"], run_as=opts["run_as"])  # fmt: skip
        for name, text, mode in (("passwd", files.passwd, 0o600), ("acl", files.acl, 0o644),
                                 ("mosquitto.conf", conf, 0o644)):  # fmt: skip
            path = out / name
            tmp = out / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)  # a running broker never reads half a file (reload: SIGHUP)
        for serial, why in files.skipped:
            self.stderr.write(f"meter {serial!r} left out: {why}")
        self.stdout.write(
            f"{len(serials) - len(files.skipped)} device accounts, bridge {bridge.username!r}, "
            f"command sender {commands.username!r} → {out}"
        )
