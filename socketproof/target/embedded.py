"""The embedded default target: with no --host, a run gets its own reference server.

Started on the master or local runner only (workers get the host from the master),
on a free loopback port, and stopped when Locust quits.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import gevent
from locust.runners import MasterRunner, WorkerRunner

from server.config import SETTING_NAMES
from server.faults import parse_faults
from server.process import ServerProcess

log = logging.getLogger("socketproof")

_child: ServerProcess | None = None


def start_if_no_host(environment: Any, jwt_secret: str) -> str | None:
    """Start the reference server when no host was given; return its base URL (or None)."""
    global _child
    if environment.host or isinstance(environment.runner, WorkerRunner):
        return None
    settings = embedded_settings(jwt_secret)
    _child = ServerProcess(settings)
    ws_url = _child.start()
    refusing = parse_faults(str(settings.get("faults") or "")).refuse_after_start  # it started: the spec is good
    if refusing:  # the switch is for restarts (--disrupt): the run itself starts on a server that accepts
        log.info("the embedded server refuses connections for %gs after it starts (refuse_after_start): waiting",
                 refusing)
        gevent.sleep(refusing)
    host = ws_url.rsplit("/ws", 1)[0]
    environment.host = host
    kind = "master" if isinstance(environment.runner, MasterRunner) else "local"
    log.info("no --host given: started the embedded reference server at %s (%s runner)", host, kind)
    environment.events.quitting.add_listener(lambda **_: stop())
    return host


EMBEDDED_DEFAULTS = {"heartbeat_interval": 2.0, "heartbeat_timeout": 2.0}
"""A short heartbeat so that even a one-minute run gives the heartbeat check evidence."""


def embedded_settings(jwt_secret: str) -> dict[str, Any]:
    """Defaults for a load run, then any SOCKETPROOF_<SETTING> the user set (e.g. SOCKETPROOF_FAULTS)."""
    settings: dict[str, Any] = dict(EMBEDDED_DEFAULTS)
    for name in SETTING_NAMES:
        value = os.environ.get("SOCKETPROOF_" + name.upper())
        if value is not None:
            settings[name] = value
    settings["jwt_secret"] = jwt_secret
    return settings


def restart() -> str:
    """Restart the running embedded server on the same port (its state lost, as a real process
    restart would lose it); RuntimeError when there is none or it did not come back."""
    if _child is None or not _child.ws_url:
        raise RuntimeError("no embedded reference server is running")
    ws_url = _child.restart()
    log.info("embedded reference server restarted at %s", ws_url.rsplit("/ws", 1)[0])
    return ws_url


def host() -> str | None:
    """The running embedded server's base URL, or None."""
    return _child.ws_url.rsplit("/ws", 1)[0] if _child is not None and _child.ws_url else None


def stop() -> None:
    global _child
    if _child is not None:
        _child.stop()
        _child = None

