"""`chain_node --ensure` starts a detached anvil with a persistent state file; `chain_deploy` is
idempotent; the deployed contracts survive a node restart."""

from __future__ import annotations

import os
import signal
import time
from io import StringIO

import pytest
from django.core.management import call_command

from apps.chain import client
from apps.chain.models import ContractDeployment
from tests.fixtures.chain import TEST_MNEMONIC, free_port

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def _stop(pid_file) -> None:
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def test_ensure_deploy_restart_keeps_state(db, settings, tmp_path):
    settings.BLOCKCHAIN_NETWORK = "local"
    settings.BLOCKCHAIN_CHAIN_ID = 31337
    settings.ANVIL_HOST = "127.0.0.1"
    settings.ANVIL_PORT = free_port()
    settings.ANVIL_MNEMONIC = TEST_MNEMONIC
    settings.ANVIL_STATE_PATH = str(tmp_path / "anvil" / "state.json")
    settings.CHAIN_OPERATOR_KEY = ""
    settings.CHAIN_KEYSTORE_PATH = ""
    settings.CHAIN_MULTISIG_SIGNERS = []
    pid_file = tmp_path / "anvil" / "anvil.pid"
    out = StringIO()
    call_command("chain_node", ensure=True, stdout=out)
    try:
        assert "started" in out.getvalue() and pid_file.exists()
        out = StringIO()
        call_command("chain_node", ensure=True, stdout=out)
        assert "already running" in out.getvalue()
        call_command("chain_deploy", stdout=StringIO())
        first = dict(ContractDeployment.objects.values_list("name", "address"))
        call_command("chain_deploy", stdout=StringIO())  # idempotent: nothing redeployed
        assert dict(ContractDeployment.objects.values_list("name", "address")) == first
        assert client.chain_health() == "ok"
    finally:
        _stop(pid_file)
    assert (tmp_path / "anvil" / "state.json").exists()
    call_command("chain_node", ensure=True, stdout=StringIO())
    try:
        assert client.chain_health() == "ok"  # the code is still at the recorded addresses
    finally:
        _stop(pid_file)
