"""A test app as a child process (the Socket.IO and GraphQL apps): started on a free loopback
port, its URL read from its ready line, and at the end stopped and checked gone.

The stop is strict on purpose: the app must have stayed up for the whole test, exit 0 by
itself on SIGTERM, and leave nothing listening on its port.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator, Mapping

from common.child_process import ChildProcess


@contextlib.contextmanager
def running_child(name: str, command: list[str], ready_mark: str, env: Mapping[str, str],
                  start_timeout: float = 20.0, stop_timeout: float = 15.0) -> Iterator[tuple[ChildProcess, str]]:
    """Yield (the child, the URL after `ready_mark` on its ready line)."""
    child = ChildProcess()
    child.ready_mark = ready_mark
    ready = child.launch(command, {**env, "PYTHONUNBUFFERED": "1"}, start_timeout)
    if ready is None:
        raise AssertionError(f"{name} did not start:\n" + "".join(child.output))
    url = ready.split(ready_mark, 1)[1].strip()
    process = child.process
    assert process is not None
    try:
        yield child, url
    finally:
        died = process.poll() is not None
        code = child.stop(stop_timeout)
        output = "".join(child.output)
        assert code is not None, f"{name} did not stop within {stop_timeout}s of SIGTERM:\n{output}"
        assert not died, f"{name} died during the test:\n{output}"
        assert code == 0, f"{name} exited with {code}:\n{output}"
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} of {name} still accepts connections"


__all__ = ["running_child", "subprocess"]
