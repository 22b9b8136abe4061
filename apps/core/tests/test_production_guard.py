"""Production refuses development settings: `manage.py check --deploy` under
config.settings.production names every problem, and passes with a proper configuration."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account

from apps.chain.intents import KEY_DUTIES
from apps.notifications.vapid import b64url_encode, public_key_b64

ROOT = Path(__file__).resolve().parents[3]
# Variables a developer's shell or `.env` may carry that would change what is being checked.
_CLEARED = (
    "BLOCKCHAIN_NETWORK",
    "BLOCKCHAIN_CHAIN_ID",
    "CHAIN_OPERATOR_KEY",
    "CHAIN_KEYSTORE_PATH",
    "CHAIN_KEYSTORE_PASSWORD",
    "CHAIN_MULTISIG_SIGNERS",
    "CHAIN_MULTISIG_THRESHOLD",
    "CHAIN_CUSTODY_SECRET",
    "REPORT_SIGNING_KEYSTORE_PATH",
    "REPORT_SIGNING_KEYSTORE_PASSWORD",
    "DJANGO_DEBUG",
    "SECRET_KEY",
    "VAPID_PRIVATE_KEY",
    "VAPID_PUBLIC_KEY",
    "VAPID_SUBJECT",
    "IOT_BROKER_URL",
    "MQTT_BRIDGE_URL",
    "MQTT_COMMANDS_URL",
    "MQTT_CA_FILE",
    "MQTT_DEVICE_PASSWORD_KEY",
)
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # public


def _cleared(name: str) -> bool:
    return name in _CLEARED or (name.startswith("CHAIN_") and name.endswith(("_KEY", "_PATH")))


def _check_deploy(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not _cleared(k)}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.production", **env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_local_chain_defaults_fail_and_every_problem_is_named():
    development_key = (
        (ROOT / ".secret_key").read_text().strip()
        if (ROOT / ".secret_key").exists()
        else "short-dev-key"
    )
    result = _check_deploy(
        {
            "SECRET_KEY": development_key,
            "DJANGO_ALLOWED_HOSTS": "coop.example",
            "DJANGO_DEBUG": "True",
            "CHAIN_OPERATOR_KEY": ANVIL_KEY_0,
        }
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for problem in (
        "energysphere.E001",  # development SECRET_KEY
        "energysphere.E101",  # BLOCKCHAIN_NETWORK=local
        "energysphere.E102",  # anvil's public operator key
        "energysphere.E106",  # no multisig signers: anvil's accounts would sign
        "energysphere.E109",  # no custody secret: the public development one
        "energysphere.E201",  # reports sealed with the published development key
        "energysphere.E301",  # web push signed with the development VAPID key
    ):
        assert problem in output, (problem, output)
    assert "BLOCKCHAIN_NETWORK is 'local'" in output


def test_raw_keys_public_signers_and_the_development_custody_secret_are_refused():
    anvil_signers = ",".join(
        Account.from_mnemonic(
            "test test test test test test test test test test test junk",
            account_path=f"m/44'/60'/0'/0/{i}",
        ).address
        for i in (1, 2, 3)
    )
    result = _check_deploy(
        {
            "SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_ALLOWED_HOSTS": "coop.example",
            "BLOCKCHAIN_NETWORK": "https://rpc.coop.example",
            "CHAIN_OPERATOR_KEY": "0x" + secrets.token_hex(32),
            "CHAIN_MULTISIG_SIGNERS": anvil_signers,
            "CHAIN_CUSTODY_SECRET": "energysphere-local-development-custody",
        }
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for problem in ("E103", "E107", "E109"):
        assert f"energysphere.{problem}" in output, (problem, output)
    assert "energysphere.E101" not in output


def test_proper_production_configuration_passes(tmp_path):
    # The check reads a keystore's address, it does not decrypt: a cheap scrypt (iterations=2)
    # spares ten key derivations of the default strength (~0.7 s of CPU each).
    keystore = tmp_path / "operator.json"
    account = Account.create()
    keystore.write_text(json.dumps(Account.encrypt(account.key, "a long passphrase", iterations=2)))
    signers = ",".join(Account.create().address for _ in range(3))
    duty_keys = {}
    for duty in KEY_DUTIES:  # every duty key, the co-signing approval key included
        path = tmp_path / f"{duty}.json"
        path.write_text(
            json.dumps(Account.encrypt(Account.create().key, f"{duty} passphrase", iterations=2))
        )
        duty_keys[f"CHAIN_{duty.upper()}_KEYSTORE_PATH"] = str(path)
        duty_keys[f"CHAIN_{duty.upper()}_KEYSTORE_PASSWORD"] = f"{duty} passphrase"
    vapid_key = ec.generate_private_key(ec.SECP256R1())
    vapid_private = b64url_encode(vapid_key.private_numbers().private_value.to_bytes(32, "big"))
    vapid_public = public_key_b64(vapid_key)
    report_keystore = tmp_path / "report-signing.json"
    report_keystore.write_text(
        json.dumps(Account.encrypt(Account.create().key, "another long passphrase", iterations=2))
    )
    result = _check_deploy(
        {
            "SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_ALLOWED_HOSTS": "coop.example",
            "BLOCKCHAIN_NETWORK": "https://rpc.coop.example",
            "BLOCKCHAIN_CHAIN_ID": "137",
            "CHAIN_KEYSTORE_PATH": str(keystore),
            "CHAIN_KEYSTORE_PASSWORD": "a long passphrase",
            "CHAIN_MULTISIG_SIGNERS": signers,
            "CHAIN_MULTISIG_THRESHOLD": "2",
            "CHAIN_CUSTODY_SECRET": secrets.token_hex(32),
            "REPORT_SIGNING_KEYSTORE_PATH": str(report_keystore),
            "REPORT_SIGNING_KEYSTORE_PASSWORD": "another long passphrase",
            "VAPID_PRIVATE_KEY": vapid_private,
            "VAPID_PUBLIC_KEY": vapid_public,
            "VAPID_SUBJECT": "mailto:board@coop.example",
            **PROPER_BROKER,
            **duty_keys,
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "energysphere.E" not in result.stdout + result.stderr


PROPER_BROKER = {
    "IOT_BROKER_URL": "mqtts://broker.coop.example:8883",
    "MQTT_BRIDGE_URL": "mqtts://es-bridge:a-long-bridge-password@broker.coop.example:8883",
    "MQTT_COMMANDS_URL": "mqtts://es-commands:a-long-commands-password@broker.coop.example:8883",
    "MQTT_DEVICE_PASSWORD_KEY": secrets.token_urlsafe(48),
}


def test_plain_mqtt_and_a_missing_or_development_device_password_key_are_refused():
    base = {"SECRET_KEY": secrets.token_urlsafe(64), "DJANGO_ALLOWED_HOSTS": "coop.example"}
    # The development defaults: mqtt://127.0.0.1:1883 for every role, no device password key.
    first = _check_deploy(base)
    output = first.stdout + first.stderr
    assert first.returncode != 0
    assert "energysphere.E311" in output and "energysphere.E312" in output, output
    assert "IOT_BROKER_URL, MQTT_BRIDGE_URL, MQTT_COMMANDS_URL are not mqtts://" in output
    # One role left on plain MQTT, and a short device password key.
    result = _check_deploy(
        {**base, **PROPER_BROKER, "MQTT_BRIDGE_URL": "mqtt://es-bridge:pw@broker.coop.example",
         "MQTT_DEVICE_PASSWORD_KEY": "dev-key"}
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "MQTT_BRIDGE_URL is not mqtts://" in output and "IOT_BROKER_URL" not in output
    assert "energysphere.E312" in output


@pytest.mark.parametrize("command", [["migrate", "--plan"]])
def test_management_commands_refuse_to_run_with_development_settings(command):
    """The guard is not only `check --deploy`: under production settings an ordinary command
    stops before doing anything."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="coop.example",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "energysphere.E101" in result.stderr
