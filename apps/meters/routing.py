from django.urls import path

from apps.meters.consumers import LiveConsumer

websocket_urlpatterns = [path("ws/meters/live/", LiveConsumer.as_asgi())]
