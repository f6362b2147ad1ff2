"""`ProtocolClient`: the `Client` on the socketproof adapter, with docs/protocol.md's verbs.

The ten core tests and the reference-server tools speak the protocol message by message
(echo, send, refresh, update, sync, raw frames); this class gives them those verbs and
the start-up they read (`Session`: welcome, snapshot, replayed). Everything below the
verbs is the protocol-free client.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from client.adapter import SessionContext
from client.adapters.socketproof import SocketproofAdapter, SocketproofSession, dumps
from client.client import Client
from client.errors import SocketproofError
from client.hooks import ConnectionHooks
from client.tokens import mint_token


@dataclasses.dataclass(frozen=True)
class Session:
    """What a connection starts with (protocol section 2)."""

    welcome: dict[str, Any]
    snapshot: dict[str, Any]
    replayed: list[dict[str, Any]]


class ProtocolClient(Client):
    """One client connection of docs/protocol.md; `connect()` again after it closed."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        recorder: ConnectionHooks | None = None,
        request_event: Any = None,
        timeout: float = 10.0,
        user: str | None = None,
        label: str | None = None,
        on_push: Any = None,
        adapter: SocketproofAdapter | None = None,
    ) -> None:
        """`user` is the user id this client acts as: with no `token`, one is minted for it
        (default secret). `label` names the client in Locust's request context."""
        token = token if token is not None or user is None else mint_token(None, user)
        label = label or user or "client"
        super().__init__(
            url,
            adapter or SocketproofAdapter(),
            SessionContext(identity=user or "", label=label, token=token),
            hooks=recorder,
            request_event=request_event,
            timeout=timeout,
            headers=headers,
        )
        self.on_push = on_push
        self._user = user

    @property
    def token(self) -> str | None:
        return self.context.token

    @token.setter
    def token(self, value: str | None) -> None:
        self.context = dataclasses.replace(self.context, token=value)

    @property
    def recorder(self) -> ConnectionHooks | None:
        return self.hooks

    @property
    def session(self) -> Session | None:  # type: ignore[override]
        ready = self.ready
        if ready is None:
            return None
        return Session(ready.info, ready.extra.get("snapshot", {}), list(ready.replayed))

    @property
    def welcome(self) -> dict[str, Any] | None:
        return self.ready.info if self.ready is not None else None

    @property
    def user(self) -> str | None:
        """The user id the server assigned (welcome), else the one given to __init__."""
        welcome = self.welcome
        if welcome is not None and "user" in welcome:
            return welcome["user"]
        return self._user

    def next_id(self) -> str:
        """A request id unique to this client (random prefix + counter)."""
        session = self._session
        if not isinstance(session, SocketproofSession):
            session = self._session = self.adapter.session(self.context)  # type: ignore[assignment]
        return session.next_id()

    def connect(  # type: ignore[override]
        self,
        last_seq: int | None = None,
        *,
        query: dict[str, Any] | None = None,
        origin: str | None = None,
    ) -> Session:
        """Handshake, read welcome + snapshot + replay. `last_seq` resumes after it;
        `query` adds raw query parameters (e.g. `token`, a bad `last_seq`)."""
        self.context = dataclasses.replace(self.context, resume_after=last_seq)
        super().connect(query=query, origin=origin)
        return self.session  # type: ignore[return-value]

    # -- verbs -----------------------------------------------------------------------

    def request(  # type: ignore[override]
        self,
        msg: dict[str, Any] | str,
        timeout: Any = None,
        *,
        name: str | None = None,
        expected_errors: tuple[str, ...] = (),
        report_as: str | None = None,
    ) -> Any:
        """Send `msg` (an `id` is assigned when missing) and wait for the reply with its id.
        Raises ProtocolError for an `error` reply, Timeout, or ConnectionClosed.
        `request(name, body)` is the generic Client form (the flows use it for any adapter)."""
        if isinstance(msg, str):
            return super().request(msg, timeout, report_as=report_as or name, expected_errors=expected_errors)
        kind = str(msg.get("type", "?"))
        body = {k: v for k, v in msg.items() if k != "type"}
        return super().request(kind, body, timeout, report_as=name or kind, expected_errors=expected_errors)

    def ping(self, timeout: float | None = None) -> dict[str, Any]:
        """Application-level ping -> pong (section 3)."""
        return self.request({"type": "ping"}, timeout)

    def echo(self, data: Any, timeout: float | None = None) -> dict[str, Any]:
        """The cheapest round trip (section 4)."""
        return self.request({"type": "echo", "data": data}, timeout)

    def send(self, to: str, data: Any, id: Any = None, timeout: float | None = None) -> dict[str, Any]:
        """Send to user `to`; returns the ack (`seq`, `queued`) (section 5)."""
        msg: dict[str, Any] = {"type": "send", "to": to, "data": data}
        if id is not None:
            msg["id"] = id
        return self.request(msg, timeout)

    def refresh(self, token: str, timeout: float | None = None) -> dict[str, Any]:
        """Swap the connection's token (section 7); a reconnect then uses the new one."""
        reply = self.request({"type": "refresh", "token": token}, timeout)
        self.token = token
        return reply

    def update(self, base_version: int, patch: dict[str, Any], timeout: float | None = None,
               *, expected_errors: tuple[str, ...] = ()) -> dict[str, Any]:
        """Patch the state document; returns the ack with the new `version` (section 8)."""
        mid = self.next_id()
        if self.hooks is not None:
            import time

            self.hooks.update_sent(mid, patch, time.time())
        return self.request({"type": "update", "id": mid, "base_version": base_version, "patch": patch},
                            timeout, expected_errors=expected_errors)

    def sync(self, timeout: float | None = None) -> dict[str, Any]:
        """Fetch the state document: the `snapshot` reply (section 8)."""
        return self.request({"type": "sync"}, timeout)

    def send_json(self, msg: dict[str, Any]) -> None:
        """Send a frame without waiting; its reply (if any) lands in the inbox."""
        self.send_frame(dumps(msg))

    def send_raw(self, data: str | bytes) -> None:
        """Send exactly `data`: str as a text frame, bytes as a binary frame (bad-input tests)."""
        self.send_frame(data)

    def __repr__(self) -> str:
        return f"<ProtocolClient {self.label} {self.url} {self.state.value} conn_id={self.conn_id!r}>"


__all__ = ["ProtocolClient", "Session", "SocketproofError"]
