"""`python -m apps.channels_chat [--port N]`: the tutorial chat on daphne, on 127.0.0.1.

Prints `channels chat listening on http://127.0.0.1:PORT` once daphne listens, then serves
until SIGTERM/SIGINT (exit 0).
"""

from __future__ import annotations

import argparse
import os
import sys

from apps.channels_chat import READY_MARK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m apps.channels_chat",
        description="The Django Channels tutorial chat (ws/chat/<room_name>/) on daphne, in-memory channel layer.")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default 0: one from the OS)")
    parser.add_argument("--ping-interval", type=float, default=20.0,
                        help="daphne's WebSocket ping interval in seconds (default 20, daphne's own)")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.channels_chat.settings")
    from daphne.server import Server  # first: it installs Twisted's asyncio reactor
    from twisted.internet import reactor

    from apps.channels_chat.asgi import application

    def announce() -> None:
        host, port = server.listening_addresses[0]
        print(f"{READY_MARK}http://{host}:{port}", flush=True)

    server = Server(
        application,
        endpoints=[f"tcp:port={args.port}:interface=127.0.0.1"],
        ping_interval=args.ping_interval,
        ready_callable=lambda: reactor.callWhenRunning(announce),
    )
    server.run()  # Twisted's signal handlers stop the reactor on SIGTERM/SIGINT
    return 0


if __name__ == "__main__":
    sys.exit(main())
