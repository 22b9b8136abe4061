"""`python manage.py chain_node [--ensure]` — the local anvil node (BLOCKCHAIN_NETWORK=local).

Foreground (for `make run`'s process list): runs anvil with the persistent state file
ANVIL_STATE_PATH (loaded at start, written every 10 s and on exit) until stopped.
`--ensure`: if nothing answers at ANVIL_HOST:ANVIL_PORT, start anvil detached (pid file next to
the state file), and return once the RPC answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.chain import client


def anvil_binary() -> str:
    local = Path(settings.BASE_DIR) / "contracts" / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if not found:
        raise CommandError("anvil is not installed: run `npm ci` in contracts/ (make setup).")
    return found


def anvil_command() -> list[str]:
    state = Path(settings.BASE_DIR) / settings.ANVIL_STATE_PATH
    state.parent.mkdir(parents=True, exist_ok=True)
    return [
        anvil_binary(),
        "--host",
        settings.ANVIL_HOST,
        "--port",
        str(settings.ANVIL_PORT),
        "--chain-id",
        str(settings.BLOCKCHAIN_CHAIN_ID),
        "--mnemonic",
        settings.ANVIL_MNEMONIC,
        "--state",
        str(state),
        "--state-interval",
        "10",
        "--silent",
    ]


def answering() -> bool:
    try:
        client.node_chain_id()
    except client.ChainError:
        return False
    return True


class Command(BaseCommand):
    help = "Run (or --ensure) the local anvil node with a persistent state file."

    def add_arguments(self, parser):
        parser.add_argument("--ensure", action="store_true", help="start detached if not running")
        parser.add_argument("--timeout", type=float, default=20.0)

    def handle(self, *args, **options):
        if not client.network_config().is_local:
            raise CommandError("BLOCKCHAIN_NETWORK is not 'local': there is no node to start.")
        if not options["ensure"]:
            os.execv(anvil_command()[0], anvil_command())  # noqa: S606 - replaces this process
        if answering():
            client.check_chain_id()
            self.stdout.write("chain node already running")
            return
        state = Path(settings.BASE_DIR) / settings.ANVIL_STATE_PATH
        state.parent.mkdir(parents=True, exist_ok=True)
        log = open(state.parent / "anvil.log", "ab")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(  # noqa: S603 - fixed local binary
            anvil_command(), stdout=log, stderr=log, start_new_session=True
        )
        (state.parent / "anvil.pid").write_text(str(process.pid))
        deadline = time.monotonic() + options["timeout"]
        while not answering():
            if process.poll() is not None or time.monotonic() > deadline:
                raise CommandError(f"anvil did not start; see {state.parent / 'anvil.log'}")
            time.sleep(0.1)
        client.check_chain_id()
        self.stdout.write(f"chain node started (pid {process.pid})")
