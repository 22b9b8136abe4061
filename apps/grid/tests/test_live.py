"""Live DR notifications over the real Channels layer (Redis), through the consumers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from apps.grid.routing import websocket_urlpatterns
from apps.grid.services import dr_event_create, dr_event_publish
from apps.grid.tests.factories import ConnectionPointFactory

START = datetime(2026, 3, 18, 17, 0, tzinfo=UTC)


def connect(path: str, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    return communicator


@pytest.mark.django_db(transaction=True)
def test_member_is_notified_live_and_others_are_not():
    """One transactional test (flushing the database is slow): live notification to the
    targeted member only; anonymous users and non-staff are refused."""
    async_to_sync(_member_is_notified_live_and_others_are_not)()
    async_to_sync(_anonymous_and_non_staff_are_refused)()


async def _member_is_notified_live_and_others_are_not():
    site, stranger = await database_sync_to_async(
        lambda: (ConnectionPointFactory(), ConnectionPointFactory())
    )()
    user = await database_sync_to_async(lambda: site.member.user)()
    other = await database_sync_to_async(lambda: stranger.member.user)()
    mine = connect("/ws/grid/events/", user)
    theirs = connect("/ws/grid/events/", other)
    assert (await mine.connect())[0] and (await theirs.connect())[0]

    def create_and_publish():
        event = dr_event_create(
            start=START, end=START + timedelta(hours=1), connection_point_ids=[site.pk]
        )
        return dr_event_publish(event_pk=event.pk)  # autocommit: on_commit runs now

    event = await database_sync_to_async(create_and_publish)()
    message = await mine.receive_json_from(timeout=5)
    assert message["kind"] == "dr_event"
    assert message["event"]["event_id"] == event.event_id
    assert message["event"]["opt"] == "pending"
    assert await theirs.receive_nothing(timeout=0.5)
    await mine.disconnect()
    await theirs.disconnect()


async def _anonymous_and_non_staff_are_refused():
    from django.contrib.auth.models import AnonymousUser

    site = await database_sync_to_async(ConnectionPointFactory)()
    user = await database_sync_to_async(lambda: site.member.user)()
    connected, _ = await connect("/ws/grid/events/", AnonymousUser()).connect()
    assert not connected
    connected, _ = await connect("/ws/grid/staff/", user).connect()
    assert not connected
