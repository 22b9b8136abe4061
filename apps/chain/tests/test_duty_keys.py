"""Duty keys: every intent kind is signed by its duty's key (checked on the mined transaction),
`check --deploy` refuses raw hex and development keys, and chain_deploy replaces outdated local
contracts but refuses to silently replace them on another network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command
from eth_account import Account

from apps.chain import client
from apps.chain.checks import chain_duty_keys_check
from apps.chain.intents import DUTIES, INTENTS, KEY_DUTIES
from apps.chain.keys import DEV_DUTY_INDEX, duty_account
from apps.chain.models import ChainIntent, ContractDeployment
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_contracts_deploy, chain_intent_submit
from apps.notifications.vapid import b64url_encode, public_key_b64
from tests.fixtures.chain import dev_account

from .test_contracts import via_multisig

ROOT = Path(__file__).resolve().parents[3]
H = 1_767_225_600
B32 = "0x" + "11" * 32

# The duty of each intent kind, spelled out: a change of the mapping must change this table.
EXPECTED_DUTY = {
    "meter_register": "anchoring",
    "meter_anchor": "anchoring",
    "settlement_apply": "settlement",
    "certificate_mint": "mint",
    "certificate_cancel": "mint",
    "certificate_transfer": "certificates",
    "certificate_claim": "certificates",
    "custody_register": "certificates",
    "custody_link": "certificates",
    "reward_mint": "rewards",
    "reward_claim": "rewards",
    "reward_redeem": "rewards",
    "dr_event_record": "grid",
    "dr_commitment_record": "grid",
    "dr_performance_record": "grid",
    "stability_record": "grid",
    "document_anchor": "documents",
}


def test_every_intent_kind_has_a_duty():
    assert set(EXPECTED_DUTY) == set(INTENTS)
    assert {spec.duty for spec in INTENTS.values()} == set(DUTIES)


def _custodial(member_id: int) -> tuple[str, dict]:
    address = client.custodial_address(member_id)
    payload = {"account": address, "signature": client.custody_registration_signature(member_id)}
    return address, payload


def _steps(chain, kind: str) -> list[tuple[str, dict]]:
    """The intents that carry out `kind` (with what it depends on), in submission order."""
    a, register_a = _custodial(9001)
    b, register_b = _custodial(9002)
    tid = (7 << 64) | H
    mint = {"to": a, "token_id": tid, "amount_wh": 1_000, "certificate_hash": B32}
    event = {"event_id": 3, "modification": 1, "start": H, "end": H + 3600, "target_w": 5_000,
             "signal_hash": B32}  # fmt: skip
    member = chain.others[0].address
    if kind.startswith("reward_"):
        via_multisig(chain, "RenewableIncentive", "setRule", 1, 10**18, True, bytes(32))
    reward = {"award_id": 1, "member": member, "rule_id": 1, "basis_wh": 2_000}
    return {
        "meter_register": [("meter_register", {"serial": "MTR-D", "device_address": member})],
        "meter_anchor": [("meter_anchor", {"interval_start": H, "version": 1, "root": B32,
                                           "leaf_count": 1})],
        "settlement_apply": [("settlement_apply", {"settlement_id": 1, "trades_root": B32,
                                                   "members": [a, b],
                                                   "money_deltas_minor": [5, -5]})],
        "certificate_mint": [("certificate_mint", mint)],
        "custody_register": [("custody_register", register_a)],
        "custody_link": [("custody_register", register_a),
                         ("custody_link", {"account": a, "wallet": member,
                                           "signature": client.custody_link_signature(9001,
                                                                                      member)})],
        "certificate_transfer": [("custody_register", register_a), ("custody_register", register_b),
                                 ("certificate_mint", mint),
                                 ("certificate_transfer", {"from_address": a, "to": b,
                                                           "token_id": tid, "amount_wh": 400})],
        "certificate_claim": [("custody_register", register_a), ("certificate_mint", mint),
                              ("certificate_claim", {"holder": a, "token_id": tid,
                                                     "amount_wh": 400, "beneficiary_hash": B32})],
        "certificate_cancel": [("custody_register", register_a), ("certificate_mint", mint),
                               ("certificate_cancel", {"holder": a, "token_id": tid,
                                                       "amount_wh": 400, "reason_hash": B32})],
        "reward_mint": [("reward_mint", reward)],
        "reward_claim": [("reward_mint", reward), ("reward_claim", {"member": member})],
        "reward_redeem": [("reward_mint", reward),
                          ("reward_redeem", {"redemption_id": 1, "member": member,
                                             "amount": 10**18})],
        "dr_event_record": [("dr_event_record", event)],
        "dr_commitment_record": [("dr_event_record", event),
                                 ("dr_commitment_record", {"event_id": 3, "member": member,
                                                           "committed_w": 1_000})],
        "dr_performance_record": [("dr_event_record", event),
                                  ("dr_performance_record", {"event_id": 3, "member": member,
                                                             "baseline_wh": 900,
                                                             "actual_wh": 400,
                                                             "delivered_wh": 500})],
        "stability_record": [("stability_record", {"interval_start": H, "score_bp": 9_000,
                                                   "data_hash": B32})],
        "document_anchor": [("document_anchor", {"kind": "compliance_report", "digest": B32})],
    }[kind]  # fmt: skip


@pytest.mark.chain
@pytest.mark.parametrize("kind", sorted(EXPECTED_DUTY))
def test_the_outbox_signs_each_intent_kind_with_its_duty_key(chain, kind):
    for i, (intent, payload) in enumerate(_steps(chain, kind)):
        chain_intent_submit(intent=intent, payload=payload, idempotency_key=f"{kind}-{i}")
    for _ in range(4):
        chain_outbox_sweep(wait_seconds=5)
        if not ChainIntent.objects.exclude(status="confirmed").exists():
            break
    rows = list(ChainIntent.objects.order_by("pk"))
    assert [(r.intent, r.status, r.error) for r in rows] == [
        (r.intent, "confirmed", "") for r in rows
    ]
    row = rows[-1]
    assert row.intent == kind
    duty = EXPECTED_DUTY[kind]
    expected = dev_account(DEV_DUTY_INDEX[duty]).address
    assert duty_account(duty).address == expected
    assert chain.w3.eth.get_transaction(row.tx_hash)["from"] == expected == row.sender
    # and no other duty's key could have sent it: the others are distinct addresses
    assert len({dev_account(i).address for i in DEV_DUTY_INDEX.values()}) == len(KEY_DUTIES)


# --- check --deploy ----------------------------------------------------------------------------


def _keystore(tmp_path: Path, name: str, key: bytes) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(Account.encrypt(key, "pw", iterations=2)))
    return str(path)


def _ids(settings) -> list[str]:
    return sorted(e.id for e in chain_duty_keys_check())


def test_deploy_check_refuses_raw_hex_development_missing_and_shared_keys(settings, tmp_path):
    settings.CHAIN_OPERATOR_KEY = ""
    good = {
        duty: {"keystore_path": _keystore(tmp_path, duty, os.urandom(32)),
               "keystore_password": "pw"}
        for duty in KEY_DUTIES
    }  # fmt: skip
    settings.CHAIN_DUTY_KEYS = good
    assert _ids(settings) == []
    # a raw hex key (even a fresh one) is refused
    settings.CHAIN_DUTY_KEYS = {**good, "mint": {"key": "0x" + os.urandom(32).hex()}}
    assert _ids(settings) == ["chain.E001"]
    # a raw hex development key: refused twice over
    settings.CHAIN_DUTY_KEYS = {**good, "mint": {"key": "0x" + bytes(dev_account(10).key).hex()}}
    assert _ids(settings) == ["chain.E001", "chain.E002"]
    # a keystore holding a development key (recognised without decrypting it)
    dev_store = _keystore(tmp_path, "dev", bytes(dev_account(0).key))
    settings.CHAIN_DUTY_KEYS = {**good, "settlement": {"keystore_path": dev_store}}
    assert _ids(settings) == ["chain.E002"]
    # a missing duty key, and one key for two duties
    settings.CHAIN_DUTY_KEYS = {d: c for d, c in good.items() if d != "grid"}
    assert _ids(settings) == ["chain.E003"]
    settings.CHAIN_DUTY_KEYS = {**good, "rewards": good["mint"]}
    assert _ids(settings) == ["chain.E005"]
    # the documents duty (report and audit-head anchors) is held to the same rules
    settings.CHAIN_DUTY_KEYS = {d: c for d, c in good.items() if d != "documents"}
    (error,) = chain_duty_keys_check()
    assert error.id == "chain.E003" and "documents duty" in error.msg
    settings.CHAIN_DUTY_KEYS = {**good, "documents": good["anchoring"]}
    assert _ids(settings) == ["chain.E005"]
    dev_documents = _keystore(tmp_path, "devdoc", bytes(dev_account(17).key))
    settings.CHAIN_DUTY_KEYS = {**good, "documents": {"keystore_path": dev_documents}}
    assert _ids(settings) == ["chain.E002"]
    # the settlement-approval co-signer is a duty key like the others
    settings.CHAIN_DUTY_KEYS = {**good, "settlement_approval": good["settlement"]}
    assert _ids(settings) == ["chain.E005"]
    settings.CHAIN_DUTY_KEYS = {**good, "settlement_approval": {"key": "0x" + "ab" * 32}}
    assert _ids(settings) == ["chain.E001"]
    # an external signer: https (or loopback http) with the address it signs as
    remote = Account.create().address
    for conf, expected in (
        ({"signer_url": "https://signer.internal/rpc", "address": remote}, []),
        ({"signer_url": "http://127.0.0.1:8550", "address": remote}, []),
        ({"signer_url": "http://signer.internal:8550", "address": remote}, ["chain.E006"]),
        ({"signer_url": "https://signer.internal/rpc"}, ["chain.E006"]),
        ({"signer_url": "https://signer.internal/rpc", "address": dev_account(12).address},
         ["chain.E002"]),
    ):  # fmt: skip
        settings.CHAIN_DUTY_KEYS = {**good, "settlement": conf}
        assert _ids(settings) == expected, conf
    settings.CHAIN_DUTY_KEYS = good
    settings.CHAIN_OPERATOR_KEY = "0x" + os.urandom(32).hex()
    assert _ids(settings) == ["chain.E001"]


def _vapid_settings() -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    return {
        "VAPID_PRIVATE_KEY": b64url_encode(key.private_numbers().private_value.to_bytes(32, "big")),
        "VAPID_PUBLIC_KEY": public_key_b64(key),
        "VAPID_SUBJECT": "mailto:board@energysphere.example",
    }


def test_check_deploy_under_production_settings_fails_on_a_raw_hex_duty_key(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "x" * 60 + os.urandom(8).hex(),
        "DJANGO_ALLOWED_HOSTS": "energysphere.example",
        "CHAIN_OPERATOR_KEY": "",
        # The rest of a proper production configuration (apps/chain/checks.py, E1xx/E2xx).
        "BLOCKCHAIN_NETWORK": "https://rpc.energysphere.example",
        "BLOCKCHAIN_CHAIN_ID": "137",
        "CHAIN_KEYSTORE_PATH": _keystore(tmp_path, "deployer", os.urandom(32)),
        "CHAIN_KEYSTORE_PASSWORD": "pw",
        "CHAIN_MULTISIG_SIGNERS": ",".join(Account.create().address for _ in range(3)),
        "CHAIN_MULTISIG_THRESHOLD": "2",
        "CHAIN_CUSTODY_SECRET": os.urandom(32).hex(),
        "REPORT_SIGNING_KEYSTORE_PATH": _keystore(tmp_path, "reports", os.urandom(32)),
        "REPORT_SIGNING_KEYSTORE_PASSWORD": "pw",
        "IOT_BROKER_URL": "mqtts://broker.energysphere.example",  # apps/meters/checks.py, E3xx
        "MQTT_BRIDGE_URL": "mqtts://es-bridge:pw@broker.energysphere.example",
        "MQTT_COMMANDS_URL": "mqtts://es-commands:pw@broker.energysphere.example",
        "MQTT_DEVICE_PASSWORD_KEY": os.urandom(32).hex(),
        **_vapid_settings(),  # apps/notifications/checks.py, web push
        **{f"CHAIN_{d.upper()}_KEYSTORE_PATH": _keystore(tmp_path, d, os.urandom(32))
           for d in KEY_DUTIES},
        **{f"CHAIN_{d.upper()}_KEYSTORE_PASSWORD": "pw" for d in KEY_DUTIES},
    }  # fmt: skip

    def check(extra: dict) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 - our own manage.py
            [sys.executable, "manage.py", "check", "--deploy"],
            cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    # Five interpreters, independent of each other: run side by side.
    with ThreadPoolExecutor(max_workers=5) as pool:
        ok, raw, approval, remote, dev = pool.map(check, [
            {},
            {"CHAIN_SETTLEMENT_KEY": "0x" + os.urandom(32).hex(),
             "CHAIN_SETTLEMENT_KEYSTORE_PATH": ""},
            {"CHAIN_SETTLEMENT_APPROVAL_KEY": "0x" + os.urandom(32).hex(),
             "CHAIN_SETTLEMENT_APPROVAL_KEYSTORE_PATH": ""},
            {"CHAIN_SETTLEMENT_APPROVAL_KEYSTORE_PATH": "",
             "CHAIN_SETTLEMENT_APPROVAL_SIGNER_URL": "https://signer.internal/rpc",
             "CHAIN_SETTLEMENT_APPROVAL_ADDRESS": Account.create().address},
            {"CHAIN_GRID_KEYSTORE_PATH": _keystore(tmp_path, "g", bytes(dev_account(15).key))},
        ])  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "chain.E" not in ok.stdout + ok.stderr
    assert raw.returncode != 0
    assert "chain.E001" in raw.stderr and "CHAIN_SETTLEMENT_KEY is a raw hex" in raw.stderr
    assert (
        approval.returncode != 0 and "CHAIN_SETTLEMENT_APPROVAL_KEY is a raw hex" in approval.stderr
    )
    assert remote.returncode == 0, remote.stderr
    assert dev.returncode != 0 and "chain.E002" in dev.stderr


# --- upgrading a deployment ------------------------------------------------------------------


@pytest.mark.chain
def test_chain_deploy_replaces_outdated_local_contracts_and_refuses_elsewhere(chain, settings):
    token = ContractDeployment.objects.get(network="local", name="EnergyToken")
    assert chain_contracts_deploy()["EnergyToken"] == token.address  # current: kept
    ContractDeployment.objects.filter(network="local", name="EnergyToken").update(
        bytecode_sha256="0" * 64
    )
    replaced = chain_contracts_deploy()
    assert replaced["EnergyToken"] != token.address
    row = ContractDeployment.objects.get(network="local", name="EnergyToken")
    assert row.address == replaced["EnergyToken"] and row.bytecode_sha256 != "0" * 64
    # the same situation on a non-local network: refused, with the way forward
    settings.BLOCKCHAIN_NETWORK = chain.node.url
    for d in ContractDeployment.objects.filter(network="local"):
        ContractDeployment.objects.create(
            network="eip155:31337", chain_id=31337, name=d.name, address=d.address,
            bytecode_sha256="0" * 64 if d.name == "MeterOracle" else d.bytecode_sha256,
        )  # fmt: skip
    with pytest.raises(client.ChainConfigError, match="new deployment plus a state migration"):
        chain_contracts_deploy()
    out = StringIO()
    with pytest.raises(Exception, match="MeterOracle"):
        call_command("chain_deploy", stdout=out)


# --- custody of members with and without a linked wallet ----------------------------------------


@pytest.mark.chain
def test_linked_members_receive_in_their_wallet_and_only_their_signature_moves_it(
    chain, member_factory
):
    from apps.chain.services import member_chain_address

    token = chain.contract("EnergyToken")
    owner = chain.others[2]
    seller, buyer = member_factory(), member_factory()
    buyer.wallet_address = owner.address
    seller_address = member_chain_address(seller)
    assert member_chain_address(buyer) == owner.address
    buyer_account = client.custodial_address(buyer.pk)
    tid = (5 << 64) | H
    chain_intent_submit(intent="certificate_mint", idempotency_key="m",
                        payload={"to": seller_address, "token_id": tid, "amount_wh": 800,
                                 "certificate_hash": B32})  # fmt: skip
    chain_intent_submit(intent="certificate_transfer", idempotency_key="to-wallet",
                        payload={"from_address": seller_address, "to": owner.address,
                                 "token_id": tid, "amount_wh": 300})  # fmt: skip
    for _ in range(3):
        chain_outbox_sweep(wait_seconds=5)
    rows = list(ChainIntent.objects.order_by("pk").values_list("intent", "status"))
    assert rows == [
        ("custody_register", "confirmed"),  # the seller's custodial account
        ("custody_register", "confirmed"),  # the buyer's, linked to their wallet
        ("custody_link", "confirmed"),
        ("certificate_mint", "confirmed"),
        ("certificate_transfer", "confirmed"),
    ]
    assert token.functions.linkedWallet(buyer_account).call() == owner.address
    assert token.functions.balanceOf(owner.address, tid).call() == 300
    # the cooperative cannot take it back without the owner's signature ...
    back = chain_intent_submit(intent="certificate_transfer", idempotency_key="from-wallet",
                               payload={"from_address": owner.address, "to": seller_address,
                                        "token_id": tid, "amount_wh": 100})  # fmt: skip
    chain_outbox_sweep(wait_seconds=5)
    back.refresh_from_db()
    assert back.status == "failed"
    assert f"NotCustodial({owner.address.lower()})" in back.error
    # ... and the member withdraws what the cooperative held for them to the linked wallet
    chain.w3.eth.wait_for_transaction_receipt(
        token.functions.mint(buyer_account, tid, 50, b"\x31" * 32).transact(
            {"from": chain.duty("mint").address}
        )
    )
    chain.w3.eth.wait_for_transaction_receipt(
        token.functions.withdraw(buyer_account, tid, 50).transact({"from": owner.address})
    )
    assert token.functions.balanceOf(owner.address, tid).call() == 350
