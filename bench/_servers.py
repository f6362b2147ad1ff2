"""Memory and /stats of the reference servers, shared by bench/idle_connections.py and its
children (the Locust monitor in bench/idle_locustfile.py and bench/bare_idle.py), so all
three read them the same way."""

from __future__ import annotations

import json
import time
import urllib.request

import psutil

from client.tokens import mint_admin_token


def rss(pid: int | None = None) -> int:
    """Resident set size in bytes of a process (default: this one)."""
    return psutil.Process(pid).memory_info().rss


def servers_rss(pids: list[int]) -> int:
    return sum(rss(pid) for pid in pids)


def server_stats(http_urls: list[str]) -> dict:
    """/stats of every server, numbers summed."""
    total: dict = {}
    for url in http_urls:
        req = urllib.request.Request(url + "/stats", headers={"Authorization": f"Bearer {mint_admin_token()}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            for key, value in json.loads(resp.read()).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
    return total


def wait_no_connections(http_urls: list[str], timeout: float, period: float = 0.5) -> int:
    """Poll /stats until the servers hold no connection (at most `timeout` s), so one run's
    closing handshakes do not overlap the next run; returns the last count (0 when reached)."""
    deadline = time.monotonic() + timeout
    while True:
        left = int(server_stats(http_urls).get("connections", 0))
        if left == 0 or time.monotonic() >= deadline:
            return left
        time.sleep(period)
