"""WebSocket routes: each app with live pages owns a `routing.py`."""

from apps.grid import routing as grid_routing
from apps.meters import routing as meters_routing

websocket_urlpatterns: list = [
    *meters_routing.websocket_urlpatterns,
    *grid_routing.websocket_urlpatterns,
]
