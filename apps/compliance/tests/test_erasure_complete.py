"""Erasure that erases: after `member_erase` no table holds the member's name or e-mail —
allauth's addresses, MFA records, login-throttling records, site coordinates, claim
beneficiaries and the audit trail included — and the on-chain beneficiary hash was salted with a
secret the erasure destroys."""

from __future__ import annotations

from datetime import date

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from axes.models import AccessAttempt
from django.apps import apps
from django.db import models

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import audit_chain_seal, audit_log_write
from apps.billing.models import Mandate
from apps.billing.services.payments import mandate_create
from apps.chain.models import ChainIntent
from apps.compliance.services import member_erase
from apps.grid.models import ConnectionPoint
from apps.grid.tests.factories import ConnectionPointFactory
from apps.incentives.chain_bridge import hash32
from apps.incentives.models import Certificate
from apps.incentives.services import certificate_claim

pytestmark = pytest.mark.django_db

NAME = "Zyxwv Quorthon"
EMAIL = "zyxwv.quorthon@example.test"
TEXT_FIELDS = (models.CharField, models.TextField, models.EmailField, models.JSONField)


def _tables_holding(text: str) -> list[str]:
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, TEXT_FIELDS) and not field.is_relation:
                lookup = {f"{field.name}__icontains": text}
                if model._default_manager.filter(**lookup).exists():
                    found.append(f"{model._meta.label_lower}.{field.name}")
    return found


def test_erasure_leaves_the_members_name_and_email_nowhere(world):
    member = world.consumer
    Member.objects.filter(pk=member.pk).update(legal_name=NAME)
    member.user.email = EMAIL
    member.user.save(update_fields=["email"])
    member.refresh_from_db()
    site = ConnectionPoint.objects.filter(member=member).first() or ConnectionPointFactory(
        member=member
    )
    ConnectionPoint.objects.filter(pk=site.pk).update(latitude=52.52, longitude=13.40)
    EmailAddress.objects.create(user=member.user, email=EMAIL, primary=True, verified=True)
    TOTP.activate(member.user, generate_totp_secret())
    AccessAttempt.objects.create(
        username=EMAIL, ip_address="203.0.113.9", user_agent="x", get_data="", post_data="",
        http_accept="", path_info="/accounts/login/", failures_since_start=1,
    )  # fmt: skip
    mandate_create(
        member=member,
        reference="ERASE-TEST-1",
        signed_on=date(2026, 6, 1),
        account_holder=NAME,
        iban="DE89370400440532013000",
    )
    certificate = Certificate.objects.filter(status="active").order_by("pk").first()
    Certificate.objects.filter(pk=certificate.pk).update(owner=member)
    claimed = certificate_claim(certificate_id=certificate.pk, member=member, beneficiary=NAME)
    audit_log_write(
        event=AuditEvent.MEMBER_DATA_EXPORTED,
        target=member,
        details={"note": f"asked by {NAME} <{EMAIL}>"},
    )
    assert _tables_holding(NAME) and _tables_holding(EMAIL)
    member.refresh_from_db()
    salt = member.chain_salt
    assert salt  # the claim's on-chain hash is salted
    intent = ChainIntent.objects.get(pk=int(claimed.chain_intent_ref))
    beneficiary_hash = intent.payload["beneficiary_hash"]
    assert beneficiary_hash == hash32(f"{salt}:{claimed.pk}:{NAME}")
    assert beneficiary_hash != hash32(f"{claimed.pk}:{NAME}")  # not guessable from the name

    audit_chain_seal()  # the rows naming the member are hash-chained before the erasure
    member_erase(member=member, actor=None)

    assert _tables_holding(NAME) == []
    # the scrub is recorded in the chain: the audit log still verifies
    audit_chain_seal()
    check = audit_chain_verify()
    assert check.ok and check.redacted_rows >= 2, check.problems
    assert _tables_holding(EMAIL) == []
    assert not EmailAddress.objects.filter(user=member.user).exists()
    assert not Authenticator.objects.filter(user=member.user).exists()
    assert not AccessAttempt.objects.filter(username__iexact=EMAIL).exists()
    site.refresh_from_db()
    assert (site.latitude, site.longitude) == (None, None)
    mandate = Mandate.objects.get(reference="ERASE-TEST-1")
    assert (mandate.iban, mandate.bic, mandate.status) == ("", "", "revoked")
    assert _tables_holding("DE89370400440532013000") == []
    member.refresh_from_db()
    assert member.chain_salt == ""  # the hash on chain can no longer be linked to anyone
    claimed.refresh_from_db()
    assert claimed.wh and claimed.status == "claimed"  # the certificate itself stays
