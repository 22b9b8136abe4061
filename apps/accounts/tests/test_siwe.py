"""EIP-4361 message format and verification (pure module, no database)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from apps.accounts.siwe import SiweError, SiweMessage, generate_nonce, verify

# The example message from the EIP-4361 specification.
SPEC_EXAMPLE = (
    "example.com wants you to sign in with your Ethereum account:\n"
    "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n"
    "\n"
    "I accept the ExampleOrg Terms of Service: https://example.com/tos\n"
    "\n"
    "URI: https://example.com/login\n"
    "Version: 1\n"
    "Chain ID: 1\n"
    "Nonce: 32891756\n"
    "Issued At: 2021-09-30T16:25:24Z\n"
    "Resources:\n"
    "- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n"
    "- https://example.com/my-web2-claim.json"
)


def test_spec_example_parses_into_its_fields():
    message = SiweMessage.parse(SPEC_EXAMPLE)
    assert message.domain == "example.com"
    assert message.address == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
    assert message.statement == "I accept the ExampleOrg Terms of Service: https://example.com/tos"
    assert message.uri == "https://example.com/login"
    assert message.chain_id == 1
    assert message.nonce == "32891756"
    assert message.issued_at == datetime(2021, 9, 30, 16, 25, 24, tzinfo=UTC)
    assert message.resources == (
        "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
        "https://example.com/my-web2-claim.json",
    )


def test_spec_example_is_rebuilt_byte_for_byte_from_its_fields():
    message = dataclasses.replace(SiweMessage.parse(SPEC_EXAMPLE), raw=None)
    assert message.to_text() == SPEC_EXAMPLE


def test_message_without_statement_has_the_grammar_blank_lines():
    message = SiweMessage(
        domain="localhost:8000",
        address="0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
        uri="http://localhost:8000/wallet/",
        chain_id=31337,
        nonce="abcdEFGH1234",
        issued_at=datetime(2026, 1, 1, tzinfo=UTC),
        expiration_time=datetime(2026, 1, 1, 0, 10, tzinfo=UTC),
    )
    text = message.to_text()
    assert text.startswith(
        "localhost:8000 wants you to sign in with your Ethereum account:\n"
        "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n\nURI: "
    )
    assert text.endswith("Expiration Time: 2026-01-01T00:10:00Z")
    assert SiweMessage.parse(text) == message


@pytest.mark.parametrize(
    "broken",
    [
        SPEC_EXAMPLE.replace("wants you to sign in", "wants to sign in"),
        SPEC_EXAMPLE.replace("Nonce: 32891756", "Nonce: 123"),
        SPEC_EXAMPLE.replace("Version: 1", "Version: 2"),
        SPEC_EXAMPLE.replace("Chain ID: 1", "Chain ID: one"),
        SPEC_EXAMPLE.replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0x1234"),
        SPEC_EXAMPLE + "\ntrailing garbage",
        SPEC_EXAMPLE.replace("Issued At: 2021-09-30T16:25:24Z", "Issued At: yesterday"),
    ],
)
def test_malformed_messages_are_rejected(broken):
    with pytest.raises(SiweError):
        SiweMessage.parse(broken)


def _signed(now, **overrides):
    account = Account.create()
    fields = {
        "domain": "coop.example",
        "address": account.address,
        "uri": "https://coop.example/wallet/",
        "chain_id": 31337,
        "nonce": generate_nonce(),
        "issued_at": now,
        "expiration_time": now + timedelta(minutes=10),
    }
    fields.update(overrides)
    message = SiweMessage(**fields)
    signature = account.sign_message(encode_defunct(text=message.to_text())).signature.hex()
    return account, message, signature


def test_verify_returns_the_checksummed_signer():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    account, message, signature = _signed(now)
    signer = verify(message, signature, domain="coop.example", nonce=message.nonce, now=now)
    assert signer == account.address


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ({"domain": "evil.example"}, "domain"),
        ({"nonce": "someOtherNonce1"}, "nonce"),
        ({"chain_id": 1}, "chain"),
        ({"now_shift": timedelta(minutes=11)}, "expired"),
    ],
)
def test_verify_rejects_wrong_domain_nonce_chain_and_expiry(check, expected):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    _account, message, signature = _signed(now)
    with pytest.raises(SiweError, match=expected):
        verify(
            message,
            signature,
            domain=check.get("domain", "coop.example"),
            nonce=check.get("nonce", message.nonce),
            now=now + check.get("now_shift", timedelta(0)),
            chain_id=check.get("chain_id", 31337),
        )


def test_signature_by_another_key_is_rejected():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    _account, message, _signature = _signed(now)
    impostor = Account.create()
    forged = impostor.sign_message(encode_defunct(text=message.to_text())).signature.hex()
    with pytest.raises(SiweError, match="not made by"):
        verify(message, forged, domain="coop.example", nonce=message.nonce, now=now)


def test_tampered_message_does_not_verify():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    _account, message, signature = _signed(now)
    tampered = dataclasses.replace(message, statement="Send all my tokens away.")
    with pytest.raises(SiweError):
        verify(tampered, signature, domain="coop.example", nonce=message.nonce, now=now)
