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
def test_staff_change_a_member_status_through_the_lifecycle(staff_client):
    member = MemberFactory(status=Member.Status.ACTIVE)
    url = f"/admin/accounts/member/{member.pk}/change/"
    received = []

    def receiver(sender, **kwargs):
        received.append((kwargs["from_status"], kwargs["to_status"]))

    status_changed.connect(receiver, dispatch_uid="test-member-admin")
    try:
        data = _post_data(staff_client.get(url))
        data["status"] = Member.Status.SUSPENDED
        response = staff_client.post(url, data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        member.refresh_from_db()
        assert member.status == Member.Status.SUSPENDED
        assert received == [("active", "suspended")]

        data = _post_data(staff_client.get(url))
        data["status"] = Member.Status.APPLICANT  # a member never becomes an applicant again
        response = staff_client.post(url, data)
        assert response.status_code == 200
        assert "Cannot go from" in str(response.context["adminform"].form.errors["status"])
    finally:
        status_changed.disconnect(dispatch_uid="test-member-admin")
    member.refresh_from_db()
    assert member.status == Member.Status.SUSPENDED
    assert received == [("active", "suspended")]
