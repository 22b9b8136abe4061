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
# Local node (BLOCKCHAIN_NETWORK=local): anvil with a persistent state file and a fixed mnemonic.
ANVIL_STATE_PATH = _env("ANVIL_STATE_PATH", default="var/anvil/state.json")
ANVIL_MNEMONIC = _env(
    "ANVIL_MNEMONIC", default="test test test test test test test test test test test junk"
)
# Seconds an RPC call may take before the client reports the node unreachable.
CHAIN_RPC_TIMEOUT = _env.int("CHAIN_RPC_TIMEOUT", default=10)
# Staff multisig that holds the privileged roles (admin, pauser, reward rules) of all contracts.
# Empty locally: anvil accounts 1..3 of the mnemonic sign, 2 of 3.
CHAIN_MULTISIG_SIGNERS = _env.list("CHAIN_MULTISIG_SIGNERS", default=[])
CHAIN_MULTISIG_THRESHOLD = _env.int("CHAIN_MULTISIG_THRESHOLD", default=2)
# Fees (EIP-1559): max fee = 2 x base fee + priority fee, never above the cap (0 = no cap).
CHAIN_PRIORITY_FEE_WEI = _env.int("CHAIN_PRIORITY_FEE_WEI", default=1_000_000_000)
CHAIN_MAX_FEE_CAP_WEI = _env.int("CHAIN_MAX_FEE_CAP_WEI", default=0)
# Replacement transactions raise both fees by this percentage (nodes require at least 10).
CHAIN_GAS_BUMP_PERCENT = _env.int("CHAIN_GAS_BUMP_PERCENT", default=15)
# A sent transaction without a receipt after this many seconds is re-sent with a bumped fee.
CHAIN_RESEND_AFTER_SECONDS = _env.int("CHAIN_RESEND_AFTER_SECONDS", default=60)
# How long one processing step waits for a receipt before handing over to the next sweep.
CHAIN_RECEIPT_WAIT_SECONDS = _env.float("CHAIN_RECEIPT_WAIT_SECONDS", default=10.0)
# Secret from which custodial member addresses are derived (HMAC; keys are never stored).
# Required outside BLOCKCHAIN_NETWORK=local.
CHAIN_CUSTODY_SECRET = _env("CHAIN_CUSTODY_SECRET", default="")
# Submit outbox rows to the Celery `chain` queue on commit (the periodic sweep also picks them up).
CHAIN_OUTBOX_ENQUEUE = _env.bool("CHAIN_OUTBOX_ENQUEUE", default=True)
# One key per duty (apps/chain/keys.py): minting certificates, certificate custody, settlement,
# meter-data anchoring, reward awards, grid records, document anchoring (report hashes and
# audit-log heads), and the settlement approval (co-signs each
# settlement batch, sends nothing). Each is an external signer (CHAIN_<DUTY>_SIGNER_URL +
# CHAIN_<DUTY>_ADDRESS) or an encrypted V3 keystore (CHAIN_<DUTY>_KEYSTORE_PATH +
# CHAIN_<DUTY>_KEYSTORE_PASSWORD); a raw hex key (CHAIN_<DUTY>_KEY) is accepted on the local chain
# only. Locally, without configuration, anvil mnemonic accounts 10-15, 17 and 18 sign (the multisig
# signers are 1-3, the guardian 16).
CHAIN_DUTY_KEYS = {
    duty: {
        "key": _env(f"CHAIN_{duty.upper()}_KEY", default=""),
        "keystore_path": _env(f"CHAIN_{duty.upper()}_KEYSTORE_PATH", default=""),
        "keystore_password": _env(f"CHAIN_{duty.upper()}_KEYSTORE_PASSWORD", default=""),
        "signer_url": _env(f"CHAIN_{duty.upper()}_SIGNER_URL", default=""),
        "address": _env(f"CHAIN_{duty.upper()}_ADDRESS", default=""),
    }
    for duty in (
        "mint",
        "certificates",
        "settlement",
        "anchoring",
        "rewards",
        "grid",
        "documents",
        "settlement_approval",
    )
}
# Guardians may pause any contract but never unpause (locally: anvil account 16).
CHAIN_GUARDIANS = _env.list("CHAIN_GUARDIANS", default=[])
# Issuance caps enforced by the contracts per period (the multisig changes them later):
# certificates in Wh, reward accruals in reward-token base units (18 decimals).
CHAIN_CAP_PERIOD_SECONDS = _env.int("CHAIN_CAP_PERIOD_SECONDS", default=86_400)
CHAIN_MINT_CAP_WH = _env.int("CHAIN_MINT_CAP_WH", default=100_000_000)
CHAIN_AWARD_CAP = _env.int("CHAIN_AWARD_CAP", default=100_000 * 10**18)
# The most reward-token base units redemptions may burn per cap period (RenewableIncentive).
CHAIN_REDEEM_CAP = _env.int("CHAIN_REDEEM_CAP", default=100_000 * 10**18)
# Seconds a meter key proposed by the anchoring key waits for a multisig veto.
CHAIN_METER_KEY_DELAY_SECONDS = _env.int(
    "CHAIN_METER_KEY_DELAY_SECONDS", default=0 if BLOCKCHAIN_NETWORK == "local" else 86_400
)
