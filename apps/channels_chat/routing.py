"""The tutorial's WebSocket routes: the room name is part of the path (`\\w+`: letters, digits, `_`)."""

from django.urls import re_path

from apps.channels_chat import consumers

websocket_urlpatterns = [
    re_path(r"ws/chat/(?P<room_name>\w+)/$", consumers.ChatConsumer.as_asgi()),
]
