"""WebSocket routes, collected from each app's `routing.py` when it has one."""

from importlib import import_module

websocket_urlpatterns: list = []
for _app in ("meters", "market", "grid", "incentives"):
    try:
        _module = import_module(f"apps.{_app}.routing")
    except ModuleNotFoundError as exc:  # app has no WebSocket routes (yet)
        if exc.name != f"apps.{_app}.routing":
            raise
        continue
    websocket_urlpatterns += _module.websocket_urlpatterns
