"""HTTP: one page saying where the chat is (the tutorial's room pages need templates; the
launcher only needs something that answers)."""

from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse("Django Channels chat: open a WebSocket to /ws/chat/<room_name>/\n",
                        content_type="text/plain")


urlpatterns = [path("", index)]
