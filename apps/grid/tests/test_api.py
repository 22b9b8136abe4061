"""The grid API: a member lists and answers only their own DR events; staff read the plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from apps.grid.models import DRParticipation
from apps.grid.services import dr_event_create, dr_event_publish
from apps.grid.tests.factories import ConnectionPointFactory
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 18, 17, 0, tzinfo=UTC)


def test_member_lists_and_answers_only_their_own_events(client):
    site = ConnectionPointFactory()
    stranger = ConnectionPointFactory()
    event = dr_event_create(
        start=START, end=START + timedelta(hours=1), connection_point_ids=[site.pk]
    )
    draft = dr_event_create(
        start=START, end=START + timedelta(hours=1), connection_point_ids=[site.pk]
    )
    dr_event_publish(event_pk=event.pk)

    client.force_login(site.member.user)
    listed = client.get(reverse("grid-api:events")).json()
    assert [e["event_id"] for e in listed] == [event.event_id]  # drafts are not shown
    assert listed[0]["site"] == site.code and listed[0]["opt"] == "pending"
    answer = client.post(
        reverse("grid-api:event_opt", args=[event.pk]),
        {"opt": "optIn"},
        content_type="application/json",
    )
    assert answer.status_code == 200 and answer.json()["opt"] == "optIn"
    bad = client.post(
        reverse("grid-api:event_opt", args=[event.pk]),
        {"opt": "maybe"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert (
        client.post(
            reverse("grid-api:event_opt", args=[draft.pk]),
            {"opt": "optIn"},
            content_type="application/json",
        ).status_code
        == 404
    )

    client.force_login(stranger.member.user)
    assert client.get(reverse("grid-api:events")).json() == []
    response = client.post(
        reverse("grid-api:event_opt", args=[event.pk]),
        {"opt": "optOut"},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert DRParticipation.objects.get(event=event).opt == "optIn"


def test_plan_api_is_staff_only(client, member, staff_user):
    client.force_login(member.user)
    assert client.get(reverse("grid-api:plan")).status_code == 403
    client.force_login(staff_user)  # without MFA in this session: refused by the policy
    assert client.get(reverse("grid-api:plan")).status_code == 403
    login_with_mfa(client, staff_user)
    assert client.get(reverse("grid-api:plan")).status_code == 404  # no plan yet


def test_every_grid_task_can_be_enqueued_with_its_limits():
    """Celery refuses to send a task whose soft limit exceeds its hard limit (the project
    default soft limit is 540 s): every grid task declares both, consistently."""
    from django.conf import settings

    from apps.grid import tasks

    default_soft = settings.CELERY_TASK_SOFT_TIME_LIMIT
    found = 0
    for name in dir(tasks):
        task = getattr(tasks, name)
        if not name.endswith("_task") or not hasattr(task, "apply_async"):
            continue
        found += 1
        hard = task.time_limit
        soft = task.soft_time_limit if task.soft_time_limit is not None else default_soft
        assert hard is not None and soft <= hard, name
    assert found >= 8
