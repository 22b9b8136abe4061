"""A member's status edited in the admin follows the membership lifecycle (Member.TRANSITIONS)."""

from __future__ import annotations

import pytest

from apps.accounts.models import Member
from apps.accounts.tests.factories import MemberFactory
from apps.core.state import status_changed


def _post_data(response) -> dict:
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None:
            continue
        data[name] = value
    return data


@pytest.mark.django_db
def test_a_status_posted_to_the_member_change_form_is_ignored(staff_client):
    """Membership status moves only through the lifecycle actions (approve, suspend, reactivate,
    leave: apps/billing/tests/test_membership.py), each with its reason and effects; a status
    smuggled into the change form's POST changes nothing."""
    member = MemberFactory(status=Member.Status.ACTIVE)
    url = f"/admin/accounts/member/{member.pk}/change/"
    received = []

    def receiver(sender, **kwargs):
        received.append((kwargs["from_status"], kwargs["to_status"]))

    status_changed.connect(receiver, dispatch_uid="test-member-admin")
    try:
        data = _post_data(staff_client.get(url))
        assert "status" not in data
        data["status"] = Member.Status.LEFT
        response = staff_client.post(url, data)
        assert response.status_code == 302
    finally:
        status_changed.disconnect(dispatch_uid="test-member-admin")
    member.refresh_from_db()
    assert member.status == Member.Status.ACTIVE
    assert received == []
