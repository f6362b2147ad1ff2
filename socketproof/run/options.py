"""Socketproof's own Locust options: declared, and validated before users start.

Pure: it imports nothing of the project, so every part (target, verdicts, capacity) can read
its values. Every option reaches Locust's parser in one place, socketproof.run.arguments.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

SECRET_OPTIONS: dict[str, str] = {
    "jwt_secret": "SOCKETPROOF_JWT_SECRET",
    "admin_token": "SOCKETPROOF_ADMIN_TOKEN",
    "token_body": "SOCKETPROOF_TOKEN_BODY",
    "socketio_auth": "SOCKETPROOF_SOCKETIO_AUTH",
    "graphql_init": "SOCKETPROOF_GRAPHQL_INIT",
    "subprotocol": "SOCKETPROOF_SUBPROTOCOL",
    "stomp_passcode": "SOCKETPROOF_STOMP_PASSCODE",
    "mqtt_password": "SOCKETPROOF_MQTT_PASSWORD",
}
"""Options whose values never reach the web UI page, a report, a log line or a JSON endpoint
(socketproof.run.secret_options), with the environment variable each can come from instead. Adapter
options can carry credentials too (a Socket.IO auth token, a GraphQL init Authorization, a
bearer token offered as a subprotocol, as Kubernetes does). Declare a new secret option here;
its add_argument takes `is_secret=name in SECRET_OPTIONS`."""


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """The validated options every Socketproof user reads."""

    ws_path: str = ""
    """Empty: the adapter's own path (/ws for the socketproof protocol)."""
    protocol: str = "socketproof"
    rooms: int = 5
    server_connections: str | None = None
    jwt_secret: str = ""
    """Empty: $SOCKETPROOF_JWT_SECRET, else the reference server's development secret (the start-up
    secrets fill it before any run: socketproof.run.secret_options)."""
    jwt_audience: str | None = None
    identities: int = 20
    tabs: int = 2
    message_bytes: int = 64
    send_interval: float = 0.5
    reconnect_probability: float = 0.1
    request_timeout: float = 10.0
    reconnect_backoff: ReconnectBackoff = dataclasses.field(default_factory=lambda: DEFAULT_BACKOFF)


class OptionError(ValueError):
    """A Socketproof option has a value no run can use."""


@dataclasses.dataclass(frozen=True)
class ReconnectBackoff:
    """--reconnect-backoff, validated: waits from `first` doubling per failed attempt up to `cap`
    seconds, with `jitter` "none", "full" (uniform in 0..the wait) or "ratio" (the wait times
    1 +- up to `ratio`, socket.io's randomizationFactor); `first == 0`: reconnect at once.
    socketproof.run.backoff computes the waits."""

    spec: str = "none"
    first: float = 0.0
    cap: float = 0.0
    jitter: str = "none"
    ratio: float = 0.0


BACKOFF_DEFAULT = "exp:0.1s..5s,jitter=full"
"""What most real clients do (Phoenix starts at 10 ms, SignalR at 0, both back off to seconds;
full jitter is the AWS/Centrifugo advice), with a first wait below any usual --send-interval, so a
user still reconnects at its next task as before and only repeated failures back off."""
BACKOFF_MAX = 600.0
"""Seconds: longer than any wait a real client makes, and bounds a user's sleep."""
_BACKOFF = re.compile(r"^exp:(?P<first>[0-9.]+(?:ms|s))\.\.(?P<cap>[0-9.]+(?:ms|s))(?:,jitter=(?P<jitter>[^,]+))?$")
_BACKOFF_USAGE = "expected none or exp:MIN..MAX[,jitter=full|none|RATIO], e.g. exp:0.5s..30s,jitter=full"


def parse_backoff(text: str) -> ReconnectBackoff:
    """`none`, or `exp:MIN..MAX[,jitter=full|none|RATIO]` (MIN, MAX like 250ms or 5s; jitter full
    when not given) -> ReconnectBackoff; OptionError naming --reconnect-backoff otherwise."""
    spec = "".join(str(text or "").split())
    if spec == "none":
        return ReconnectBackoff()
    found = _BACKOFF.match(spec)
    if found is None:
        raise OptionError(f"--reconnect-backoff {text!r}: {_BACKOFF_USAGE}")
    first, cap = _seconds(found["first"]), _seconds(found["cap"])
    if first is None or cap is None:
        raise OptionError(f"--reconnect-backoff {text!r}: {_BACKOFF_USAGE}")
    if not 0 < first <= cap <= BACKOFF_MAX:
        raise OptionError(f"--reconnect-backoff {text!r}: needs 0 < MIN <= MAX <= {BACKOFF_MAX:g}s")
    jitter = found["jitter"] or "full"
    if jitter in ("full", "none"):
        return ReconnectBackoff(spec, first, cap, jitter)
    try:
        ratio = float(jitter)
    except ValueError:
        ratio = -1.0
    if not 0 < ratio <= 1:  # NaN fails too
        raise OptionError(f"--reconnect-backoff {text!r}: jitter is full, none or a ratio in (0, 1], got {jitter!r}")
    return ReconnectBackoff(spec, first, cap, "ratio", ratio)


def _seconds(text: str) -> float | None:
    """`250ms` or `1.5s` -> seconds (None for a malformed number like `1..2s`)."""
    number, scale = (text[:-2], 0.001) if text.endswith("ms") else (text[:-1], 1.0)
    try:
        return float(number) * scale
    except ValueError:
        return None


DEFAULT_BACKOFF = parse_backoff(BACKOFF_DEFAULT)


def add_run_arguments(group: Any, checks_help: str) -> None:
    """The run's own options (socketproof.run.arguments puts them on Locust's parser).
    `checks_help` lists what --checks can name (the arguments module reads the check registry)."""
    group.add_argument(
        "--protocol",
        default="socketproof",
        help="the service's wire protocol: socketproof, socketio, graphql-ws, or your own adapter as "
        "path/to/file.py:ClassName (docs/adapters.md) (default socketproof)",
    )
    group.add_argument(
        "--ws-path", default="",
        help="WebSocket endpoint path on the host (default: the protocol's, /ws for socketproof)",
    )
    group.add_argument(
        "--rooms", type=int, default=5,
        help="rooms the chat flows join, for protocols with rooms/subscriptions (default 5)",
    )
    group.add_argument(
        "--heartbeat-interval",
        type=float,
        default=None,
        help="seconds between the server's pings, for a protocol that announces none: the heartbeat check "
        "then judges against it (default: the announced interval, else the one observed)",
    )
    group.add_argument(
        "--server-connections",
        default="",
        help="the server's open-connection count for the cleanup check: URL#metric of a Prometheus text endpoint "
        "(http://host:port/metrics#ws_connections; RabbitMQ: http://host:15692/metrics#rabbitmq_connections) or "
        "URL#field of a JSON one (default: the reference server's /stats)",
    )
    # Secrets default to "" and are filled at start-up (socketproof.run.secret_options): a default is
    # shown in the web UI's page source, so one read from the environment would leak to anyone who opens it.
    group.add_argument(
        "--jwt-secret",
        default="",
        is_secret=True,
        help="HMAC secret to mint user tokens (empty: $SOCKETPROOF_JWT_SECRET, else a random one for the "
        "embedded server or the development secret for --host; in the web UI: the one given at start-up)",
    )
    group.add_argument("--jwt-audience", default="", help="'aud' claim for minted tokens (default none)")
    group.add_argument("--identities", type=int, default=20, help="size of the pool of user identities (default 20)")
    group.add_argument("--tabs", type=int, default=2, help="connections per identity in the multi-tab flow (default 2)")
    group.add_argument("--message-bytes", type=int, default=64, help="payload size of sent messages (default 64)")
    group.add_argument("--send-interval", type=float, default=0.5, help="seconds between sends per user (default 0.5)")
    group.add_argument(
        "--reconnect-probability",
        type=float,
        default=0.1,
        help="chance per task that the reconnect flow drops its connection (default 0.1)",
    )
    group.add_argument(
        "--request-timeout", type=float, default=10.0, help="seconds to wait for a reply (default 10)"
    )
    group.add_argument(
        "--reconnect-backoff", default=BACKOFF_DEFAULT,
        help="how a user waits before reconnecting after a lost connection or a failed connect, like real "
        "clients: exp:MIN..MAX[,jitter=J], waits from MIN doubling per failed attempt up to MAX, J full (uniform "
        "in 0..the wait: Phoenix, Centrifugo), none (every client in step: a thundering herd) or a ratio like "
        "0.5 (socket.io's exp:1s..5s,jitter=0.5); none reconnects at once. Default " + BACKOFF_DEFAULT + ": "
        "its first wait is below the send interval, so a user reconnects at its next task as it always did, "
        "and only a server that stays down is backed off from",
    )
    group.add_argument(
        "--checks",
        default="all",
        help=f"checks to run at the end: all (default), or a comma list of {checks_help}",
    )
    group.add_argument(
        "--threshold",
        action="append",
        default=[],
        include_in_web_ui=False,
        help="k6-style SLO, repeatable: 'echo:p95<50', 'connect:p99<200', 'failures<0.1%%', 'rps>100'",
    )
    group.add_argument(
        "--checks-report", default="reports", help="folder for checks.json and checks-junit.xml (default reports)"
    )
    group.add_argument(
        "--strict", action="store_true", default=False, help="an unknown verdict fails the run too (exit 1)"
    )
    group.add_argument(
        "--admin-token",
        default="",
        is_secret=True,
        help="token with role=admin for the server's /stats (empty: $SOCKETPROOF_ADMIN_TOKEN, else minted "
        "from the JWT secret; in the web UI: the one given at start-up)",
    )
    group.add_argument(
        "--drain", type=float, default=1.0, help="seconds for in-flight messages to land at the end (default 1)"
    )
    group.add_argument("--proxy-faults", default="", include_in_web_ui=False,
                       help="put the fault proxy in front of the target for the run, e.g. drop=0.2 or none "
                       "(python -m socketproof.proxy --help lists the faults)")
    group.add_argument("--disrupt", action="append", default=[], include_in_web_ui=False,
                       help="a disruption at a moment of the run, repeatable: 'AT:ACTION' with AT like 15s or 1m30s "
                       "from the start and ACTION 'run COMMAND' (through the shell, on the master), restart (the "
                       "embedded server), cut or pause=Ns (the fault proxy: needs --proxy-faults); judged by "
                       "the recovery check")
    group.add_argument("--proxy-seed", type=int, default=None, include_in_web_ui=False,
                       help="seed for --proxy-faults' random choices (default random)")


def number_option(options: Any, name: str, kind: type, low: float, high: float | None = None) -> Any:
    """Option `name` as `kind` within [low, high]; OptionError names the flag (NaN included)."""
    raw = getattr(options, name, None)
    flag = "--" + name.replace("_", "-")
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise OptionError(f"{flag} must be a number, got {raw!r}") from None
    if value != value or value < low or (high is not None and value > high):  # NaN fails every comparison
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise OptionError(f"{flag} must be {bounds}, got {raw!r}")
    return value


def load_options(parsed: Any) -> LoadOptions:
    """Validate Locust's parsed options into LoadOptions; raises OptionError with the flag's name."""
    if parsed is None:
        return LoadOptions()
    ws_path = str(getattr(parsed, "ws_path", "") or "")
    if ws_path and not ws_path.startswith("/"):
        raise OptionError(f"--ws-path must start with '/', got {ws_path!r}")
    secret = str(getattr(parsed, "jwt_secret", "") or "")
    return LoadOptions(
        ws_path=ws_path,
        protocol=str(getattr(parsed, "protocol", "") or "socketproof").strip(),
        rooms=number_option(parsed, "rooms", int, 1, 100_000) if getattr(parsed, "rooms", None) is not None else 5,
        server_connections=server_connections_option(parsed),
        jwt_secret=secret,
        jwt_audience=str(getattr(parsed, "jwt_audience", "") or "") or None,
        identities=number_option(parsed, "identities", int, 1, 1_000_000),
        tabs=number_option(parsed, "tabs", int, 1, 100),
        message_bytes=number_option(parsed, "message_bytes", int, 0, 16 * 1024 * 1024),
        send_interval=number_option(parsed, "send_interval", float, 0.0, 3600.0),
        reconnect_probability=number_option(parsed, "reconnect_probability", float, 0.0, 1.0),
        request_timeout=number_option(parsed, "request_timeout", float, 0.01, 3600.0),
        reconnect_backoff=parse_backoff(str(getattr(parsed, "reconnect_backoff", None) or BACKOFF_DEFAULT)),
    )


def server_connections_option(parsed: Any) -> str | None:
    """--server-connections URL#name, checked for shape here (read at the start and end of a run)."""
    raw = str(getattr(parsed, "server_connections", "") or "").strip()
    if not raw:
        return None
    url, sep, name = raw.partition("#")
    if not sep or not name or not url.startswith(("http://", "https://")):
        raise OptionError(
            f"--server-connections must be URL#name, e.g. http://host:port/metrics#ws_connections, got {raw!r}"
        )
    return raw


def drain_seconds(parsed: Any) -> float:
    """--drain, validated like the load options (an infinite drain would hang the run's end)."""
    if parsed is None or getattr(parsed, "drain", None) is None:
        return 1.0
    return float(number_option(parsed, "drain", float, 0.0, 600.0))
