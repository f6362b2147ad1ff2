"""A JSON HTTP endpoint on 127.0.0.1 (port 0) for tests: a login endpoint, a backend API.

`answer(path, body) -> (status, json_or_None)` decides each POST, or `(status, json_or_None,
headers)` to add headers (a redirect's Location); `posts` keeps what came.
Started and stopped as a context manager, its thread checked gone.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from typing import Any

Answer = Callable[[str, Any], "tuple[int, Any] | tuple[int, Any, dict[str, str]]"]


class JsonEndpoint:
    def __init__(self, answer: Answer, path: str = "/login") -> None:
        self.posts: list[tuple[str, Any]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw) if raw else {}
                owner.posts.append((self.path, body))
                status, reply, *extra = answer(self.path, body)
                data = json.dumps(reply).encode() if reply is not None else b""
                self.send_response(status)
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> JsonEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
        assert not self.thread.is_alive()
