from django.urls import path

from apps.grid.consumers import MemberEventsConsumer, StaffGridConsumer

websocket_urlpatterns = [
    path("ws/grid/events/", MemberEventsConsumer.as_asgi()),
    path("ws/grid/staff/", StaffGridConsumer.as_asgi()),
]
