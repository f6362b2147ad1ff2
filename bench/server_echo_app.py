"""The baseline of bench/server_echo.py: a bare flask-sock route that echoes every frame.

Served exactly like the reference server (gevent monkey-patched, gevent WSGIServer with
server.serve.ClosingHandler, 127.0.0.1, port 0, one ready line), so the only difference
the benchmark sees is the protocol server's own work.

    python bench/server_echo_app.py            # prints "... listening on ws://127.0.0.1:PORT/ws"
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent.event  # noqa: E402
from flask import Flask, request  # noqa: E402
from flask_sock import Sock  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

from server.app import UPGRADED_KEY  # noqa: E402
from server.config import Settings  # noqa: E402
from server.serve import ClosingHandler  # noqa: E402


def create_app() -> Flask:
    app = Flask("bare-echo")
    # Same frame size limit as the reference server's default.
    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": Settings().max_message_bytes}
    sock = Sock(app)

    @sock.route("/ws")
    def echo(ws) -> None:  # type: ignore[no-untyped-def]
        request.environ[UPGRADED_KEY] = True  # lets ClosingHandler end TCP, as for the real server
        while True:
            ws.send(ws.receive())

    return app


def main() -> int:
    server = WSGIServer(("127.0.0.1", 0), create_app(), handler_class=ClosingHandler, log=None)
    server.start()
    print(f"bare flask-sock echo listening on ws://127.0.0.1:{server.address[1]}/ws", flush=True)
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    server.stop(timeout=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
