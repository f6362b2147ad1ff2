"""client/adapter.py's base classes: the defaults of every optional method, and adapters
written before the bases (duck-typed) loading and running unchanged."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from client.adapter import (
    ROUND_TRIP,
    Adapter,
    AdapterSession,
    Handshake,
    LegacySession,
    Ready,
    SessionContext,
    as_adapter_class,
    as_session,
)
from client.adapters import AdapterError, AdapterSettings, build_adapter, load_adapter_class
from client.adapters.graphql_ws import GraphQLWSSession
from client.adapters.socketproof import SocketproofSession
from client.client import Client
from client.errors import ProtocolError
from client.transport import State

CONTEXT = SessionContext("alice", "alice-1")


class Minimal(AdapterSession):
    """Only what is required."""

    def handshake(self) -> Handshake:
        return Handshake("/m")


# -- the bases' defaults --------------------------------------------------------------------------


def test_every_optional_session_method_has_a_default() -> None:
    s = Minimal()
    assert tuple(s.start()) == () and tuple(s.goodbye()) == ()
    assert s.ready_without_greeting() is None
    assert s.negotiated("chat.v1") is None and s.negotiated(None) is None
    assert s.start_timeout is None and s.start_timed_out() is None
    assert s.closed(4403, "no") is None and s.closed(None, "") is None


@pytest.mark.parametrize(("method", "args"), [("receive", ("x",)), ("request", ("echo", 1)),
                                               ("publish", ("c", None, "p")), ("subscribe", ("c",))])
def test_a_required_session_method_left_out_says_which(method: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(NotImplementedError, match=f"Minimal.{method}"):
        getattr(Minimal(), method)(*args)


def test_the_adapter_base_takes_settings_and_requires_a_session() -> None:
    class Bare(Adapter):
        name = "bare"
        default_path = "/"
        capabilities = frozenset()

    adapter = Bare(AdapterSettings())
    with pytest.raises(NotImplementedError, match="Bare.session"):
        adapter.session(CONTEXT)


def test_built_in_sessions_inherit_and_keep_their_slots() -> None:
    session = SocketproofSession("/ws", CONTEXT)
    assert isinstance(session, AdapterSession) and not hasattr(session, "__dict__")
    assert as_session(session) is session
    assert session.closed(1006, "") is None  # the default: a plain ConnectionClosed


def test_a_session_overrides_what_its_protocol_says() -> None:
    session = build_adapter("graphql-ws", AdapterSettings({"graphql_ack_timeout": 2.5})).session(CONTEXT)
    assert isinstance(session, GraphQLWSSession)
    assert session.start_timeout == 2.5 and session.start_timed_out() is not None
    assert session.closed(4403, "Forbidden") is not None


# -- adapters written before the bases ---------------------------------------------------------------


class DuckSession:
    """A session from the older docs: no base, some optional methods, an attribute of its own."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.start_timeout = 1.5

    def handshake(self) -> Handshake:
        return Handshake("/duck")

    def start(self) -> list[str]:
        return ["hello"]

    def receive(self, frame: Any) -> list[Any]:
        self.seen.append(frame)
        return []

    def request(self, name: str, body: Any) -> tuple[Any, Any]:
        return 1, "req"

    def publish(self, channel: str, stamp: Any, payload: str) -> tuple[Any, Any]:
        return None, "pub"

    def subscribe(self, channel: str) -> tuple[Any, Any]:
        return None, "sub"

    def goodbye(self) -> list[str]:
        return []

    def closed(self, code: int | None, reason: str) -> Any:
        return ProtocolError("named", reason) if code == 4000 else None

    def flush(self) -> str:
        return "own method"


def test_a_duck_typed_session_is_wrapped_with_its_own_methods_and_the_defaults() -> None:
    inner = DuckSession()
    session = as_session(inner)
    assert isinstance(session, LegacySession) and isinstance(session, AdapterSession) and session.inner is inner
    assert session.receive.__self__ is inner  # its own bound method, called with no extra hop
    assert session.start() == ["hello"] and session.handshake().path == "/duck"
    session.receive("frame")
    assert inner.seen == ["frame"]
    assert session.ready_without_greeting() is None and session.negotiated("x") is None  # the defaults
    assert session.start_timed_out() is None
    assert isinstance(session.closed(4000, "why"), ProtocolError) and session.closed(1000, "") is None
    assert session.start_timeout == 1.5
    inner.start_timeout = 3.0
    assert session.start_timeout == 3.0  # read through, not copied
    assert session.flush() == "own method" and session.seen is inner.seen  # other attributes read through
    assert "DuckSession" in repr(session)


def test_a_duck_typed_session_without_start_timeout_gets_none() -> None:
    class NoTimeout:
        def receive(self, frame: Any) -> list[Any]:
            return []

    assert as_session(NoTimeout()).start_timeout is None


def test_a_duck_typed_adapter_class_gets_the_base_as_a_second_one() -> None:
    class Duck:
        """Docs of the duck."""

        name = "duck"
        default_path = "/duck"
        capabilities = frozenset({ROUND_TRIP})

        def session(self, context: SessionContext) -> DuckSession:
            return DuckSession()

    cls = as_adapter_class(Duck)
    assert issubclass(cls, Duck) and issubclass(cls, Adapter)
    assert (cls.__name__, cls.__qualname__, cls.__module__, cls.__doc__) == (
        "Duck", Duck.__qualname__, __name__, "Docs of the duck.")
    adapter = cls(AdapterSettings())  # the base's __init__ takes the settings it has none for
    assert (adapter.name, adapter.default_path, adapter.capabilities) == ("duck", "/duck", frozenset({ROUND_TRIP}))
    assert isinstance(adapter.session(CONTEXT), DuckSession)  # the client wraps it, not the class
    assert as_adapter_class(cls) is cls


# The JSON chat adapter as docs/adapters.md showed it before the base classes: no inheritance,
# an __init__ of its own, start/goodbye/ready_without_greeting written out.
OLD_STYLE_ADAPTER = '''
import itertools
import json

from client.adapter import ROUND_TRIP, SUBSCRIBE, Delivery, Handshake, Push, Ready, Reply, Stamp
from client.errors import ProtocolError


class OldChatAdapter:
    name = "old-chat"
    default_path = "/chat"
    capabilities = frozenset({ROUND_TRIP, SUBSCRIBE})

    def __init__(self, settings=None):
        self.settings = settings

    def session(self, context):
        return OldChatSession(context)


class OldChatSession:
    def __init__(self, context):
        self.context = context
        self.refs = itertools.count(1)

    def handshake(self):
        headers = {"Authorization": f"Bearer {self.context.token}"} if self.context.token else {}
        return Handshake("/chat", headers=headers)

    def start(self):
        return []

    def ready_without_greeting(self):
        return Ready(conn_id=self.context.label)

    def goodbye(self):
        return []

    def request(self, name, body):
        ref = next(self.refs)
        return ref, json.dumps({"op": name, "ref": ref, "body": body})

    def publish(self, channel, stamp, payload):
        return None, json.dumps({"op": "publish", "room": channel, "body": payload})

    def subscribe(self, channel):
        return ("joined", channel), json.dumps({"op": "join", "room": channel})

    def receive(self, frame):
        try:
            msg = json.loads(frame)
        except ValueError:
            return [Push({"raw": frame}, "invalid")]
        op = msg.get("op")
        if op == "message":
            return [Delivery(msg.get("room"), Stamp.find(msg.get("body")), msg)]
        if op == "joined":
            return [Reply(("joined", msg.get("room")), msg)]
        if op == "echo":
            return [Reply(msg.get("ref"), msg)]
        if op == "error":
            return [Reply(msg.get("ref"), msg, ProtocolError("refused", str(msg.get("reason")), msg))]
        return [Push(msg, str(op))]
'''


def write_adapter(tmp_path: Path, source: str, name: str = "old_chat.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


@pytest.mark.usefixtures("nothing_left_open")
def test_an_adapter_written_from_the_old_docs_loads_and_runs(tmp_path: Path, chat_url: str) -> None:
    cls = load_adapter_class(write_adapter(tmp_path, OLD_STYLE_ADAPTER) + ":OldChatAdapter")
    assert issubclass(cls, Adapter) and cls.__name__ == "OldChatAdapter"
    adapter = build_adapter(write_adapter(tmp_path, OLD_STYLE_ADAPTER) + ":OldChatAdapter", AdapterSettings())
    assert isinstance(adapter, Adapter) and adapter.settings == AdapterSettings()  # its own __init__ ran
    client = Client(chat_url, adapter, CONTEXT, timeout=2.0)
    with client:
        ready = client.connect()  # its own ready_without_greeting: the chat server says nothing first
        assert isinstance(ready, Ready) and ready.conn_id == "alice-1" and client.state is State.OPEN
        session = client.adapter_session
        assert isinstance(session, LegacySession) and type(session.inner).__name__ == "OldChatSession"
        assert client.subscribe("room-1") == {"op": "joined", "room": "room-1"}
        assert client.request("echo", {"n": 1}) == {"op": "echo", "ref": 1, "body": {"n": 1}}
        assert session.refs is session.inner.refs  # its attributes read through
    assert client.state is State.CLOSED


def test_load_adapter_class_still_says_what_a_class_lacks(tmp_path: Path) -> None:
    path = write_adapter(tmp_path, '''
        from client.adapter import Adapter

        class NoSession:
            name = "x"
            capabilities = frozenset()

        class BaseOnly(Adapter):
            name = "y"
            capabilities = frozenset()

        class Nameless:
            capabilities = frozenset()
            def session(self, context):
                return None
    ''', "broken.py")
    for class_name, missing in (("NoSession", "session"), ("BaseOnly", "session"), ("Nameless", "name")):
        with pytest.raises(AdapterError, match=f"{class_name} is not an adapter \\(missing {missing};"):
            load_adapter_class(f"{path}:{class_name}")


def test_the_worked_example_inherits_the_bases() -> None:
    root = Path(__file__).resolve().parents[2]
    cls = load_adapter_class(f"{root}/docs/examples/json_chat_adapter.py:JsonChatAdapter")
    assert Adapter in cls.__mro__[1:2]  # inherited, not mixed in by the loader
    session = cls(AdapterSettings()).session(CONTEXT)
    assert isinstance(session, AdapterSession) and not isinstance(session, LegacySession)
    assert tuple(session.start()) == () and tuple(session.goodbye()) == ()  # the base's
    assert session.ready_without_greeting() == Ready(conn_id="alice-1")
    assert json.loads(session.request("echo", 1)[1]) == {"op": "echo", "ref": 1, "body": 1}
