"""WebSocket consumers: a member's live DR notifications; staff's live grid feed."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.accounts.policy import Capability, scope_allows
from apps.grid import realtime


@database_sync_to_async
def _member_id(user) -> int | None:
    member = getattr(user, "member", None) if user.is_authenticated else None
    return member.pk if member is not None else None


class MemberEventsConsumer(AsyncJsonWebsocketConsumer):
    """ws/grid/events/: the member's own DR events (published, modified, started, ended)."""

    policy = Capability.PORTAL

    async def connect(self):
        user = self.scope.get("user")
        allowed = await scope_allows(self.scope, self.policy)
        member_id = await _member_id(user) if allowed and user is not None else None
        if member_id is None:
            await self.close(code=4403)
            return
        self.group = realtime.member_group(member_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dr_event(self, message):
        await self.send_json({"kind": "dr_event", "event": message["event"]})


class StaffGridConsumer(AsyncJsonWebsocketConsumer):
    """ws/grid/staff/: loading updates, alerts, DR answers and command acknowledgements.

    Read-only feed: staff and auditors who passed TOTP in this session (the permission policy);
    staff without MFA, members and anonymous visitors are closed with 4403."""

    policy = Capability.STAFF_READ

    async def connect(self):
        if not await scope_allows(self.scope, self.policy):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(realtime.STAFF_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(realtime.STAFF_GROUP, self.channel_name)

    async def dr_event(self, message):
        await self.send_json({"kind": "dr_event", "event": message["event"]})

    async def dr_opt(self, message):
        await self.send_json({k: v for k, v in message.items() if k != "type"} | {"kind": "dr_opt"})

    async def grid_update(self, message):
        await self.send_json({"kind": "grid_update", "data": message["data"]})
