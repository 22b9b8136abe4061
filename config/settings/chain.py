"""Ethereum-compatible chain settings (see apps/chain)."""

import environ

_env = environ.Env()

# "local" (default): the project's own anvil node, started by `make run` / the test fixture.
# Otherwise an RPC URL; BLOCKCHAIN_CHAIN_ID must then be set and is checked at start.
BLOCKCHAIN_NETWORK = _env("BLOCKCHAIN_NETWORK", default="local")
BLOCKCHAIN_CHAIN_ID = _env.int("BLOCKCHAIN_CHAIN_ID", default=31337)
ANVIL_HOST = _env("ANVIL_HOST", default="127.0.0.1")
ANVIL_PORT = _env.int("ANVIL_PORT", default=8545)
# Operator key (hex) for signing transactions. Locally it defaults to anvil's first
# well-known development account derived from the public test mnemonic.
CHAIN_OPERATOR_KEY = _env("CHAIN_OPERATOR_KEY", default="")
CHAIN_KEYSTORE_PATH = _env("CHAIN_KEYSTORE_PATH", default="")
CHAIN_KEYSTORE_PASSWORD = _env("CHAIN_KEYSTORE_PASSWORD", default="")
CHAIN_CONFIRMATIONS = _env.int("CHAIN_CONFIRMATIONS", default=1)
