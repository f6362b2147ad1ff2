"""The Django Channels tutorial chat, served by daphne: a service that puts the room in the URL.

The WebSocket is `ws://HOST:PORT/ws/chat/<room_name>/` (room names are `\\w+`: letters, digits,
`_`). A connection is in that one room for its whole life: it sends `{"message": M}` and every
connection of the room, the sender included, gets `{"message": M}`, with no room name in it.
The code is the tutorial's (consumers.py, routing.py, asgi.py with its Origin check and auth
middleware) on minimal settings: no database, DEBUG off, loopback hosts only, the in-memory
channel layer. `GET /` answers a line of text.

The tutorial's `AllowedHostsOriginValidator` refuses (HTTP 403) a WebSocket upgrade without an
Origin header of an allowed host: browsers always send one, websocket-client does by default,
Socketproof only with `--origin http://127.0.0.1:PORT`.

Run: `python -m apps.channels_chat --port 8000` (port 0 by default); it prints
`channels chat listening on http://127.0.0.1:PORT` once daphne listens. `running_app()` runs it
as a child process for a test and stops it, checking nothing is left behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from apps.app_child import AppHandle, running_child

READY_MARK = "channels chat listening on "


@dataclasses.dataclass
class ChatHandle(AppHandle):
    """A running chat (app_child.AppHandle: url, process, output, port, ws_url)."""

    def room_url(self, room: str) -> str:
        return f"{self.ws_url}/ws/chat/{room}/"

    @property
    def origin(self) -> str:
        """An Origin the tutorial's AllowedHostsOriginValidator accepts."""
        return self.url


def wait_answering(url: str, timeout: float) -> None:
    """Until GET `url` answers 200 (the app is serving, not only listening), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {timeout:g}s")
        time.sleep(0.05)


@contextlib.contextmanager
def running_app(*, start_timeout: float = 30.0, **switches: float) -> Iterator[ChatHandle]:
    """Start the chat on a free loopback port; stop it after and check it is gone.

    `switches` are the command-line options by their dest (`ping_interval=1`).
    """
    command = [sys.executable, "-m", "apps.channels_chat", "--port", "0"]
    for name, value in switches.items():
        command += ["--" + name.replace("_", "-"), str(value)]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SOCKETPROOF_") and key != "DJANGO_SETTINGS_MODULE"}
    with running_child("channels chat", command, READY_MARK, env, start_timeout) as (child, url):
        assert child.process is not None
        wait_answering(url + "/", start_timeout)
        yield ChatHandle(url, child.process, child.output)
