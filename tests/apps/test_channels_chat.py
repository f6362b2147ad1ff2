"""apps/channels_chat: the Django Channels tutorial chat really runs on daphne, the room in the URL.

Two connections in one room both get a message (the sender included, as the tutorial's
group_send does); a connection in another room does not; the tutorial's Origin check and URL
pattern refuse what they refuse; the app stops with SIGTERM and leaves nothing behind.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
import websocket

from apps.channels_chat import running_app
from tests.apps.support import collect, connect, receive_json, silent


def test_a_message_reaches_every_connection_of_its_room_and_no_other_room() -> None:
    with running_app() as app:
        alice, bob, carol = (connect(app.room_url(room)) for room in ("lobby", "lobby", "kitchen"))
        try:
            alice.send(json.dumps({"message": "hello lobby"}))
            assert receive_json(alice) == {"message": "hello lobby"}
            assert receive_json(bob) == {"message": "hello lobby"}
            assert silent(carol, 0.5), "a message of room lobby reached room kitchen"

            carol.send(json.dumps({"message": "hello kitchen"}))
            assert receive_json(carol) == {"message": "hello kitchen"}
            assert silent(alice, 0.3) and silent(bob, 0.3), "a message of room kitchen reached room lobby"

            for n in range(20):  # one sender's messages arrive in order at every member
                bob.send(json.dumps({"message": f"m{n}"}))
            expected = [{"message": f"m{n}"} for n in range(20)]
            assert collect(alice, lambda m: True, 20) == expected
            assert collect(bob, lambda m: True, 20) == expected
        finally:
            for ws in (alice, bob, carol):
                ws.close()
        with urllib.request.urlopen(app.url + "/", timeout=5) as response:
            assert response.status == 200 and b"/ws/chat/<room_name>/" in response.read()
    assert app.process.poll() == 0  # stopped by SIGTERM, exit 0; running_app checked the port is free


def test_the_tutorial_refuses_no_origin_and_room_names_outside_its_pattern() -> None:
    with running_app() as app:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect(app.room_url("lobby"), suppress_origin=True)  # AllowedHostsOriginValidator
        assert refused.value.status_code == 403
        with pytest.raises(websocket.WebSocketBadStatusException) as unrouted:
            connect(app.room_url("room-0"))  # `\w+`: no hyphen, no route
        assert unrouted.value.status_code == 500
        ws = connect(app.room_url("lobby"), origin=app.origin)  # what --origin would send
        ws.send(json.dumps({"message": "with an origin"}))
        assert receive_json(ws) == {"message": "with an origin"}
        ws.close()
    assert app.process.poll() == 0
