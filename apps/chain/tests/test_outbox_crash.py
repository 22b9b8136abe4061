"""Acceptance 1: the outbox worker process is killed between signing and recording, restarted,
and the intent ends mined exactly once (real worker processes, real PostgreSQL, real anvil)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from apps.chain.models import ChainIntent
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_intent_submit

pytestmark = [pytest.mark.chain, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
DEVICE = "0x" + "42" * 20


def _worker(chain, crash_at: str | None = None) -> subprocess.CompletedProcess:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "BLOCKCHAIN_NETWORK": "local",
        "ANVIL_HOST": "127.0.0.1",
        "ANVIL_PORT": str(chain.node.port),
        "CHAIN_OPERATOR_KEY": "",
        "CHAIN_KEYSTORE_PATH": "",
        "CHAIN_OUTBOX_ENQUEUE": "false",
        "CHAIN_CONFIRMATIONS": "1",
    }
    env.pop("CHAIN_TEST_CRASH_AT", None)
    if crash_at:
        env["CHAIN_TEST_CRASH_AT"] = crash_at
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "chain_outbox", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )


def _registrations(chain) -> list:
    oracle = chain.contract("MeterOracle")
    return oracle.events.MeterRegistered().get_logs(from_block=0)


@pytest.mark.parametrize("crash_at", ["after_broadcast", "after_sign"])
def test_worker_killed_mid_send_is_recovered_and_sends_once(chain_tx, crash_at):
    chain = chain_tx
    nonce0 = chain.w3.eth.get_transaction_count(chain.duty("anchoring").address)
    before = len(_registrations(chain))
    row = chain_intent_submit(
        intent="meter_register",
        payload={"serial": "CRASH-1", "device_address": DEVICE},
        idempotency_key=f"crash-{crash_at}",
    )

    killed = _worker(chain, crash_at=crash_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    row.refresh_from_db()
    if crash_at == "after_broadcast":
        # signed and recorded, broadcast, then killed before recording "sent"
        assert row.status == ChainIntent.Status.SIGNED
        assert row.tx_hash
        assert chain.w3.eth.get_transaction_count(chain.duty("anchoring").address) == nonce0 + 1
    else:
        # killed before the signed transaction was committed: nothing recorded, nothing sent
        assert row.status == ChainIntent.Status.PENDING
        assert chain.w3.eth.get_transaction_count(chain.duty("anchoring").address) == nonce0
    signed_hash = row.tx_hash

    restarted = _worker(chain)
    assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
    row.refresh_from_db()
    assert row.status == ChainIntent.Status.CONFIRMED, row.error
    if signed_hash:
        assert row.tx_hash == signed_hash  # the recovered transaction, not a second one
    assert chain.w3.eth.get_transaction_count(chain.duty("anchoring").address) == nonce0 + 1
    assert len(_registrations(chain)) == before + 1

    chain_outbox_sweep()  # a further sweep changes nothing
    assert chain.w3.eth.get_transaction_count(chain.duty("anchoring").address) == nonce0 + 1
