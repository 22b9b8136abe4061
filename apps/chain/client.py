"""web3.py client: network configuration, keys, contract artifacts, health.

The only module that talks to the node. It passes plain values and dataclasses across the boundary.

Network (settings ``BLOCKCHAIN_NETWORK``): ``local`` is the project's anvil node at
``ANVIL_HOST:ANVIL_PORT``; anything else is an RPC URL. Either way the node's chain id must equal
``BLOCKCHAIN_CHAIN_ID`` before anything is signed. The network's name in the database is ``local``
or ``eip155:<chain id>`` (CAIP-2).

Keys: the deployer key is ``CHAIN_OPERATOR_KEY`` (hex) from the environment, else an encrypted
keystore (``CHAIN_KEYSTORE_PATH`` + ``CHAIN_KEYSTORE_PASSWORD``, eth-account's V3 format), else —
on the local network only — the first account of the public development mnemonic; it holds no role
once deployed. The outbox signs with one key per duty (``apps.chain.keys``). Keys are never
written to the database.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve
from django.conf import settings
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from web3 import Web3

from apps.core.exceptions import ApplicationError

BUILD_DIR = Path(settings.BASE_DIR) / "contracts" / "build"
CONTRACT_NAMES = (
    "StaffMultisig",
    "EnergyToken",
    "EnergyTrading",
    "MeterOracle",
    "GridBalancer",
    "RenewableIncentive",
)
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

Account.enable_unaudited_hdwallet_features()

# Public development material: anvil's test mnemonic (its accounts are printed by every anvil)
# and the custody secret used on the local chain. Production refuses both (apps/chain/checks.py).
PUBLIC_TEST_MNEMONIC = "test test test test test test test test test test test junk"
DEVELOPMENT_CUSTODY_SECRET = "energysphere-local-development-custody"  # noqa: S105


class ChainError(ApplicationError):
    """Something about the chain connection or configuration is wrong (retryable)."""


class ChainConfigError(ChainError):
    """Configuration problem: wrong chain id, missing key, unknown contract."""


class ChainUnavailable(ChainError):
    """The RPC node does not answer."""


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    name: str  # "local" or "eip155:<chain id>"
    rpc_url: str
    chain_id: int
    is_local: bool


def network_config() -> NetworkConfig:
    network = settings.BLOCKCHAIN_NETWORK
    chain_id = int(settings.BLOCKCHAIN_CHAIN_ID)
    if network == "local":
        url = f"http://{settings.ANVIL_HOST}:{settings.ANVIL_PORT}"
        return NetworkConfig(name="local", rpc_url=url, chain_id=chain_id, is_local=True)
    if not network.startswith(("http://", "https://")):
        raise ChainConfigError(
            "BLOCKCHAIN_NETWORK must be 'local' or an http(s) RPC URL.", {"value": network}
        )
    return NetworkConfig(
        name=f"eip155:{chain_id}", rpc_url=network, chain_id=chain_id, is_local=False
    )


def network_name() -> str:
    return network_config().name


@functools.lru_cache(maxsize=8)
def _web3_for(url: str, timeout: float) -> Web3:
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))


def web3() -> Web3:
    return _web3_for(network_config().rpc_url, float(settings.CHAIN_RPC_TIMEOUT))


def node_chain_id(w3: Web3 | None = None) -> int:
    w3 = w3 or web3()
    try:
        return int(w3.eth.chain_id)
    except Exception as exc:  # noqa: BLE001 - any transport failure means the node is unreachable
        raise ChainUnavailable(
            f"RPC node {network_config().rpc_url} is unreachable: {exc.__class__.__name__}: {exc}"
        ) from exc


def check_chain_id(w3: Web3 | None = None) -> None:
    """Raise ChainConfigError unless the node's chain id is BLOCKCHAIN_CHAIN_ID."""
    cfg = network_config()
    actual = node_chain_id(w3)
    if actual != cfg.chain_id:
        raise ChainConfigError(
            f"Wrong chain id: the node at {cfg.rpc_url} reports {actual}, "
            f"BLOCKCHAIN_CHAIN_ID is {cfg.chain_id}.",
            {"expected": cfg.chain_id, "actual": actual},
        )


def mnemonic_account(index: int) -> LocalAccount:
    """Account `index` of the (public, development-only) anvil mnemonic."""
    return Account.from_mnemonic(settings.ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def operator_account() -> LocalAccount:
    """The deployer key (deploys and wires the contracts, then renounces every role)."""
    if settings.CHAIN_OPERATOR_KEY:
        try:
            return Account.from_key(settings.CHAIN_OPERATOR_KEY)
        except Exception as exc:  # noqa: BLE001
            raise ChainConfigError("CHAIN_OPERATOR_KEY is not a valid private key.") from exc
    if settings.CHAIN_KEYSTORE_PATH:
        path = Path(settings.CHAIN_KEYSTORE_PATH)
        try:
            keystore = json.loads(path.read_text())
            key = Account.decrypt(keystore, settings.CHAIN_KEYSTORE_PASSWORD)
        except FileNotFoundError as exc:
            raise ChainConfigError(f"Keystore file {path} does not exist.") from exc
        except ValueError as exc:
            raise ChainConfigError(f"Cannot decrypt keystore {path}: {exc}") from exc
        return Account.from_key(key)
    if network_config().is_local:
        return mnemonic_account(0)
    raise ChainConfigError(
        "No signing key configured: set CHAIN_OPERATOR_KEY or CHAIN_KEYSTORE_PATH "
        "(+ CHAIN_KEYSTORE_PASSWORD)."
    )


def multisig_signers() -> tuple[list[str], int]:
    """(signer addresses, threshold) of the staff multisig."""
    signers = [to_checksum_address(a) for a in settings.CHAIN_MULTISIG_SIGNERS]
    if not signers:
        if not network_config().is_local:
            raise ChainConfigError("CHAIN_MULTISIG_SIGNERS must list the staff signer addresses.")
        signers = [mnemonic_account(i).address for i in (1, 2, 3)]
    return signers, int(settings.CHAIN_MULTISIG_THRESHOLD)


def custodial_address(member_id: int) -> str:
    """Deterministic custodial address of a member without a linked wallet.

    The private key is HMAC-SHA256(CHAIN_CUSTODY_SECRET, "member:<id>") mod n; it is derived only
    here (for the address and the account's on-chain custody registration) and never stored.
    Registered custodial holdings are moved by the contracts' CUSTODIAN_ROLE; the key lets the
    cooperative hand a member their key on request.
    """
    return _custodial_address(_custody_secret(), member_id)


def _custody_secret() -> str:
    secret = settings.CHAIN_CUSTODY_SECRET
    if not secret:
        if not network_config().is_local:
            raise ChainConfigError("CHAIN_CUSTODY_SECRET is required outside the local network.")
        secret = DEVELOPMENT_CUSTODY_SECRET
    return secret


def _custodial_key(secret: str, member_id: int) -> bytes:
    digest = hmac.new(secret.encode(), f"member:{member_id}".encode(), hashlib.sha256).digest()
    key = int.from_bytes(digest, "big") % (_SECP256K1_N - 1) + 1
    return key.to_bytes(32, "big")


@functools.lru_cache(maxsize=65_536)
def _custodial_address(secret: str, member_id: int) -> str:
    public = coincurve.PrivateKey(_custodial_key(secret, member_id)).public_key.format(False)
    return to_checksum_address(keccak(public[1:])[-20:])


CUSTODY_STATEMENT = keccak(b"EnergySphere custodial account")


def custody_registration_signature(member_id: int) -> str:
    """The custodial account's own signature that registers it in EnergyToken (EIP-191 over
    keccak256(abi.encode(CUSTODY_STATEMENT, chain id, account)), as EnergyToken.custodyDigest).
    The key is derived for this signature only and never kept."""
    from eth_account.messages import encode_defunct

    secret = _custody_secret()
    account = Account.from_key(_custodial_key(secret, member_id))
    inner = keccak(
        abi_encode(
            ["bytes32", "uint256", "address"],
            [CUSTODY_STATEMENT, int(settings.BLOCKCHAIN_CHAIN_ID), account.address],
        )
    )
    signed = account.sign_message(encode_defunct(primitive=inner))
    return "0x" + bytes(signed.signature).hex()


LINK_STATEMENT = keccak(b"EnergySphere linked wallet")


def custody_link_signature(member_id: int, wallet: str) -> str:
    """The custodial account's signature that links it to the member's own wallet in EnergyToken
    (EIP-191 over keccak256(abi.encode(LINK_STATEMENT, chain id, account, wallet)), as
    EnergyToken.linkDigest): custodial balances may then be withdrawn, and settlements deliver, to
    that wallet."""
    from eth_account.messages import encode_defunct

    account = Account.from_key(_custodial_key(_custody_secret(), member_id))
    inner = keccak(
        abi_encode(
            ["bytes32", "uint256", "address", "address"],
            [
                LINK_STATEMENT,
                int(settings.BLOCKCHAIN_CHAIN_ID),
                account.address,
                to_checksum_address(wallet),
            ],
        )
    )
    signed = account.sign_message(encode_defunct(primitive=inner))
    return "0x" + bytes(signed.signature).hex()


@functools.lru_cache(maxsize=16)
def artifact(name: str) -> dict[str, Any]:
    """ABI and bytecode of a compiled contract (contracts/build/<name>.json)."""
    path = BUILD_DIR / f"{name}.json"
    if not path.exists():
        raise ChainConfigError(f"No compiled artifact for {name} (run `make contracts`).")
    return json.loads(path.read_text())


@functools.lru_cache(maxsize=1)
def _error_selectors() -> dict[bytes, tuple[str, list[str]]]:
    out: dict[bytes, tuple[str, list[str]]] = {}
    for name in CONTRACT_NAMES:
        for item in artifact(name)["abi"]:
            if item["type"] != "error":
                continue
            types = [_abi_type(i) for i in item["inputs"]]
            signature = f"{item['name']}({','.join(types)})"
            out[function_signature_to_4byte_selector(signature)] = (item["name"], types)
    return out


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return item["type"]


def decode_revert(data: str | bytes | None) -> str:
    """Readable form of revert data: `Name(arg, ...)` for our custom errors."""
    if not data:
        return "reverted without reason"
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    selector, body = raw[:4], raw[4:]
    if selector == bytes.fromhex("08c379a0"):  # Error(string)
        return abi_decode(["string"], body)[0]
    known = _error_selectors().get(selector)
    if known is None:
        return f"reverted with data 0x{raw.hex()}"
    name, types = known
    try:
        args = abi_decode(types, body)
    except Exception:  # noqa: BLE001
        return name
    shown = ", ".join(("0x" + a.hex()) if isinstance(a, bytes) else str(a) for a in args)
    return f"{name}({shown})"


def deployed_address(name: str) -> str:
    from apps.chain.models import ContractDeployment

    row = ContractDeployment.objects.filter(network=network_name(), name=name).first()
    if row is None:
        raise ChainConfigError(
            f"{name} is not deployed on network {network_name()!r} (run `manage.py chain_deploy`)."
        )
    return row.address


def contract(name: str, address: str | None = None, w3: Web3 | None = None) -> Any:
    """A web3 contract object for a deployed contract of the current network."""
    w3 = w3 or web3()
    return w3.eth.contract(address=address or deployed_address(name), abi=artifact(name)["abi"])


def chain_health() -> str:
    """'ok' when the node answers with the expected chain id and contracts are deployed."""
    try:
        check_chain_id()
    except ChainError as exc:
        return f"error: {exc.message}"
    try:
        from apps.chain.models import ContractDeployment

        missing = set(CONTRACT_NAMES) - set(
            ContractDeployment.objects.filter(network=network_name()).values_list("name", flat=True)
        )
    except Exception as exc:  # noqa: BLE001 - e.g. table not migrated yet
        return f"error: contract registry unavailable: {exc.__class__.__name__}"
    if missing:
        return f"error: not deployed: {', '.join(sorted(missing))} (run manage.py chain_deploy)"
    try:
        w3 = web3()
        rows = ContractDeployment.objects.filter(network=network_name())
        empty = sorted(r.name for r in rows if len(w3.eth.get_code(r.address)) == 0)
    except Exception as exc:  # noqa: BLE001
        return f"error: {exc.__class__.__name__}: {exc}"
    if empty:
        return f"error: no code at the recorded address of {', '.join(empty)} (chain reset?)"
    return "ok"


@dataclass(frozen=True, slots=True)
class IssuanceAllowance:
    contract: str
    unit: str  # "Wh" (certificates) or "ESR base units" (rewards)
    cap: int
    used: int  # this period
    headroom: int
    period_seconds: int


_ALLOWANCE_FUNCTIONS = {
    "EnergyToken": ("mintAllowance", "Wh"),
    "RenewableIncentive": ("awardAllowance", "ESR base units"),
}


def issuance_allowance(name: str, address: str) -> IssuanceAllowance | None:
    """The per-period issuance cap of a capped contract, its use this period and the headroom
    (None for other contracts)."""
    spec = _ALLOWANCE_FUNCTIONS.get(name)
    if spec is None:
        return None
    function, unit = spec
    cap, used, headroom, period = contract(name, address).functions[function]().call()
    return IssuanceAllowance(name, unit, int(cap), int(used), int(headroom), int(period))
