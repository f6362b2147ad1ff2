"""Which loopback a process dials: a master's 127.0.0.1 target is no target for a remote worker.

The embedded server and the `--proxy-faults` proxy listen on the master's loopback, and the
master hands their `ws://127.0.0.1:PORT` to its workers. A worker on another machine would dial
its own loopback, where any local listener would get the run's tokens and credential headers
(issue 24, finding 11). The master stamps the options it sends with its loopback's identity; a
worker whose loopback is another one refuses the run, says why, and the master ends it (exit 2).
"""

from __future__ import annotations

import functools
import os
import socket
from typing import Any

OPTION = "socketproof_master_loopback"
"""Set on the master's parsed options (Locust sends them to every worker with each spawn)."""
REFUSED_MESSAGE = "socketproof_loopback_refused"


@functools.cache
def identity() -> str:
    """Processes dial the same loopback when they share a kernel and a network namespace
    (containers on one host share the kernel but not the namespace); elsewhere, the host name."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip()
        return f"{boot}/net:{os.stat('/proc/self/ns/net').st_ino}"
    except OSError:
        return f"host:{socket.gethostname()}"


def stamp(parsed: Any) -> None:
    """On the master, once it made a loopback target (the embedded server, the fault proxy)."""
    if parsed is not None:
        setattr(parsed, OPTION, identity())


def refusal(parsed: Any, host: str | None) -> str | None:
    """On a worker: why it must not run this host (None when it may)."""
    master = getattr(parsed, OPTION, None) if parsed is not None else None
    if not master or master == identity():
        return None
    return (f"the run's host {host} is on the master's loopback (the embedded server or --proxy-faults), which "
            f"this worker on {socket.gethostname()} cannot reach: give --host an address every worker reaches, "
            "and run workers of a --proxy-faults run on the master's machine (--processes)")
