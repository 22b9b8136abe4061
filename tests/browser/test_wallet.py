"""Wallet linking in the browser: the page's script talks to an EIP-1193 wallet (window.ethereum),
gets the EIP-4361 message from the API, has it signed and submits the signature."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from apps.accounts.tests.factories import DEFAULT_PASSWORD, MemberFactory
from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A minimal injected wallet: accounts and personal_sign are answered by Python (eth-account),
# standing in for a browser extension holding the key.
FAKE_WALLET = """
window.ethereum = {
  request: async ({method, params}) => {
    if (method === "eth_requestAccounts") { return [await window.walletAddress()]; }
    if (method === "personal_sign") { return await window.walletSign(params[0], params[1]); }
    throw new Error("unsupported " + method);
  },
};
"""


def test_member_links_a_browser_wallet(live_server, page):
    member = MemberFactory()
    account = Account.create()
    signed: list[str] = []

    def sign(message_hex: str, address: str) -> str:
        assert address == account.address
        text = bytes.fromhex(message_hex[2:]).decode()
        signed.append(text)
        return "0x" + account.sign_message(encode_defunct(text=text)).signature.hex()

    page.expose_function("walletAddress", lambda: account.address)
    page.expose_function("walletSign", sign)
    page.add_init_script(FAKE_WALLET)

    page.goto(f"{live_server.url}/accounts/login/?next=/wallet/")
    page.fill("input[name=login]", member.user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{live_server.url}/wallet/")
    assert page.locator("#no-wallet").is_visible()

    page.click("#browser-wallet-link")
    page.wait_for_selector("#linked-address")

    assert page.locator("#linked-address").inner_text() == account.address
    assert signed and signed[0].startswith(
        "localhost:" + str(live_server.url.rsplit(":", 1)[1]) + " wants you to sign in"
    )
    assert f"membership {member.membership_number}" in signed[0]
    member.refresh_from_db()
    assert member.wallet_address == account.address
    assert AuditLog.objects.filter(
        event=AuditEvent.WALLET_LINKED, target_id=str(member.pk)
    ).exists()
    assert page.js_errors == []
