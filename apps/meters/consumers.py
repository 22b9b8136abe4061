"""WebSocket: the member's latest readings and the community live balance (dashboard)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.cache import cache

from apps.accounts.policy import Capability, scope_allows
from apps.meters.live import (
    ANY_WATCHER_KEY,
    COMMUNITY_GROUP,
    community_balance,
    latest_for_members,
    member_group,
    watcher_key,
)


@database_sync_to_async
def _member_id(user) -> int | None:
    if not getattr(user, "is_authenticated", False):
        return None
    member = getattr(user, "member", None)
    return member.pk if member is not None else None


@database_sync_to_async
def _snapshot(member_id: int) -> dict:
    cache.set(watcher_key(member_id), 1, timeout=6 * 3600)
    cache.set(ANY_WATCHER_KEY, 1, timeout=6 * 3600)
    return {
        "latest": latest_for_members([member_id]).get(member_id),
        "balance": community_balance(),
    }


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Members only; each member joins only their own group (no other member's data)."""

    policy = Capability.PORTAL

    async def connect(self):
        allowed = await scope_allows(self.scope, self.policy)
        self.member_id = await _member_id(self.scope.get("user")) if allowed else None
        if self.member_id is None:
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(member_group(self.member_id), self.channel_name)
        await self.channel_layer.group_add(COMMUNITY_GROUP, self.channel_name)
        await self.accept()
        snapshot = await _snapshot(self.member_id)
        await self.send_json({"type": "snapshot", **snapshot})

    async def disconnect(self, code):
        if getattr(self, "member_id", None) is None:
            return
        await self.channel_layer.group_discard(member_group(self.member_id), self.channel_name)
        await self.channel_layer.group_discard(COMMUNITY_GROUP, self.channel_name)

    async def meters_latest(self, event):
        await self.send_json({"type": "latest", "latest": event["latest"]})

    async def meters_balance(self, event):
        await self.send_json({"type": "balance", "balance": event["balance"]})
