"""WebSocket consumers: a member's live DR notifications; staff's live grid feed."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.grid import realtime


@database_sync_to_async
def _member_id(user) -> int | None:
    member = getattr(user, "member", None) if user.is_authenticated else None
    return member.pk if member is not None else None


class MemberEventsConsumer(AsyncJsonWebsocketConsumer):
    """ws/grid/events/: the member's own DR events (published, modified, started, ended)."""

    async def connect(self):
        user = self.scope.get("user")
        member_id = await _member_id(user) if user is not None else None
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
    """ws/grid/staff/: loading updates, alerts, DR answers and command acknowledgements."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
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
