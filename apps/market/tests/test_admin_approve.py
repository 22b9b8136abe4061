"""Approving a settlement run in the admin asks first: a confirmation page with the run's
totals; only the confirming POST anchors."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.tests.factories import MemberFactory, StaffUserFactory
from apps.audit.models import AuditLog
from apps.market.models import SettlementRun
from apps.market.tests.factories import make_trade
from tests.fixtures.core import login_with_mfa

CHANGELIST = reverse("admin:market_settlementrun_changelist")


@pytest.mark.django_db
def test_approve_shows_a_confirmation_page_then_anchors_only_when_confirmed(chain):
    settled = make_trade(MemberFactory(), settled=True).clearing.run
    open_run = make_trade(MemberFactory()).clearing.run
    client = Client()
    login_with_mfa(client, StaffUserFactory())
    ids = [str(settled.pk), str(open_run.pk)]
    page = client.post(CHANGELIST, {"action": "approve_and_anchor", "_selected_action": ids})
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="confirm-approve"' in text and "approve and anchor 1 run" in text
    assert "only settled runs can be approved" in text
    settled.refresh_from_db()
    assert settled.status == SettlementRun.Status.SETTLED
    assert not AuditLog.objects.filter(event="settlement_run.anchored").exists()

    response = client.post(
        CHANGELIST,
        {"action": "approve_and_anchor", "_selected_action": ids, "confirm": "yes"},
        follow=True,
    )
    settled.refresh_from_db()
    open_run.refresh_from_db()
    assert settled.status == SettlementRun.Status.ANCHORED and settled.chain_intent_id
    assert open_run.status == SettlementRun.Status.OPEN
    messages = [str(m) for m in response.context["messages"]]
    assert any("1 settlement runs queued for anchoring" in m for m in messages)
    assert any(str(open_run) in m for m in messages)  # the refused one is named
    assert AuditLog.objects.filter(event="settlement_run.anchored").count() == 1
