"""common/child_process.py: start until the ready line, keep the output, stop with SIGTERM."""

from __future__ import annotations

import sys

from common.child_process import ChildProcess

SCRIPT = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("bye", flush=True), sys.exit(3)))
print("warming up", flush=True)
print("ready at ws://127.0.0.1:1", flush=True)
while True:
    time.sleep(0.05)
"""


def test_launch_returns_the_ready_line_and_stop_the_exit_code() -> None:
    child = ChildProcess()
    child.ready_mark = "ready at "
    ready = child.launch([sys.executable, "-c", SCRIPT], {"PYTHONUNBUFFERED": "1"}, 15)
    assert ready == "ready at ws://127.0.0.1:1\n"
    assert child.stop() == 3
    assert child.output == ["warming up\n", "ready at ws://127.0.0.1:1\n", "bye\n"]


def test_no_ready_line_in_time_kills_it_and_returns_none() -> None:
    child = ChildProcess()
    child.ready_mark = "never printed"
    assert child.launch([sys.executable, "-c", SCRIPT], {}, 1.0) is None
    assert child.process is not None and child.process.poll() is not None
    assert "warming up\n" in child.output
