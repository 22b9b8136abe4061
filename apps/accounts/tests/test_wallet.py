"""Wallet linking by Sign-In with Ethereum through the portal page and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from eth_account import Account
from eth_account.messages import encode_defunct

from apps.accounts.models import WalletNonce
from apps.accounts.services import wallet_challenge_issue, wallet_link
from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.core.exceptions import ApplicationError

pytestmark = pytest.mark.django_db

DOMAIN = "testserver"


def _sign(account, text: str) -> str:
    return account.sign_message(encode_defunct(text=text)).signature.hex()


def _challenge(member, account, **kwargs):
    return wallet_challenge_issue(
        user=member.user,
        address=account.address.lower(),
        domain=kwargs.pop("domain", DOMAIN),
        uri="http://testserver/wallet/",
        **kwargs,
    )


def test_portal_flow_links_the_checksummed_address_and_audits_it(member_client, member):
    account = Account.create()
    page = member_client.post(reverse("portal:wallet_challenge"), {"address": account.address})
    assert page.status_code == 200
    message = page.context["message"]
    assert message.startswith("testserver wants you to sign in with your Ethereum account:\n")
    assert f"membership {member.membership_number}" in message

    response = member_client.post(
        reverse("portal:wallet_link"), {"message": message, "signature": _sign(account, message)}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.wallet_address == account.address  # EIP-55 checksummed
    assert member.wallet_linked_at is not None
    log = AuditLog.objects.get(event=AuditEvent.WALLET_LINKED, target_id=str(member.pk))
    assert log.details["address"] == account.address
    assert log.actor == member.user
    page = member_client.get(reverse("portal:wallet"))
    assert account.address in page.content.decode()


def test_nonce_is_single_use(member):
    account = Account.create()
    message = _challenge(member, account).to_text()
    signature = _sign(account, message)
    wallet_link(user=member.user, message=message, signature=signature, domain=DOMAIN)
    with pytest.raises(ApplicationError, match="already used"):
        wallet_link(user=member.user, message=message, signature=signature, domain=DOMAIN)


def test_expired_message_is_refused_and_burns_the_nonce(member):
    account = Account.create()
    issued = timezone.now() - timedelta(hours=1)
    message = _challenge(member, account, now=issued).to_text()
    with pytest.raises(ApplicationError, match="expired"):
        wallet_link(
            user=member.user, message=message, signature=_sign(account, message), domain=DOMAIN
        )
    member.refresh_from_db()
    assert member.wallet_address == ""
    assert WalletNonce.objects.get(user=member.user).used_at is not None
    assert AuditLog.objects.filter(event=AuditEvent.WALLET_LINK_FAILED).exists()


def test_wrong_signer_is_refused(member):
    account, impostor = Account.create(), Account.create()
    message = _challenge(member, account).to_text()
    with pytest.raises(ApplicationError, match="not made by"):
        wallet_link(
            user=member.user, message=message, signature=_sign(impostor, message), domain=DOMAIN
        )
    member.refresh_from_db()
    assert member.wallet_address == ""


def test_message_for_another_domain_is_refused(member):
    account = Account.create()
    message = _challenge(member, account, domain="phishing.example").to_text()
    with pytest.raises(ApplicationError, match="domain"):
        wallet_link(
            user=member.user, message=message, signature=_sign(account, message), domain=DOMAIN
        )


def test_nonce_issued_to_another_member_cannot_be_used(member, other_member):
    account = Account.create()
    message = _challenge(member, account).to_text()
    with pytest.raises(ApplicationError, match="not issued to you"):
        wallet_link(
            user=other_member.user,
            message=message,
            signature=_sign(account, message),
            domain=DOMAIN,
        )


def test_a_wallet_links_to_one_membership_only(member, other_member):
    account = Account.create()
    message = _challenge(member, account).to_text()
    wallet_link(user=member.user, message=message, signature=_sign(account, message), domain=DOMAIN)
    message = _challenge(other_member, account).to_text()
    with pytest.raises(ApplicationError, match="another membership"):
        wallet_link(
            user=other_member.user,
            message=message,
            signature=_sign(account, message),
            domain=DOMAIN,
        )


def test_bad_signature_in_the_portal_shows_an_error(member_client, member):
    account = Account.create()
    page = member_client.post(reverse("portal:wallet_challenge"), {"address": account.address})
    response = member_client.post(
        reverse("portal:wallet_link"),
        {"message": page.context["message"], "signature": "0x" + "00" * 65},
    )
    assert response.status_code == 400
    assert b"wallet-error" in response.content
    member.refresh_from_db()
    assert member.wallet_address == ""


def test_invalid_address_is_a_form_error(member_client):
    response = member_client.post(reverse("portal:wallet_challenge"), {"address": "0x1234"})
    assert response.status_code == 400
    assert b"40 hex digits" in response.content


def test_api_challenge_and_link(member_client, member):
    account = Account.create()
    response = member_client.post(
        "/api/accounts/wallet/challenge/",
        {"address": account.address},
        content_type="application/json",
    )
    assert response.status_code == 201
    message = response.json()["message"]
    response = member_client.post(
        "/api/accounts/wallet/link/",
        {"message": message, "signature": _sign(account, message)},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["wallet_address"] == account.address


def test_api_link_with_bad_signature_is_a_400_with_a_message(member_client):
    account = Account.create()
    message = member_client.post(
        "/api/accounts/wallet/challenge/",
        {"address": account.address},
        content_type="application/json",
    ).json()["message"]
    response = member_client.post(
        "/api/accounts/wallet/link/",
        {"message": message, "signature": _sign(Account.create(), message)},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "not made by" in response.json()["message"]
