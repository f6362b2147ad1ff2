"""Soak: many connect / message / disconnect cycles against one reference server, then
compare the server's memory (RSS) and registry with the start.

    .venv/bin/python bench/soak.py [--duration 600] [--workers 4] [--json FILE]

One `python -m server` child (short heartbeat and queue_ttl so that dropped connections
and idle users are forgotten within seconds). `--workers` threads loop for `--duration`
seconds: connect as one of `--users` identities (sometimes resuming with last_seq),
echo, send to another identity (live or offline: queued), then close cleanly or drop
abruptly. Server RSS (psutil) and /stats are sampled as it runs. At the end the workers
stop, the server gets heartbeat + queue_ttl to forget everything, and the final figures
are compared with a baseline taken after a warm-up (imports, caches and allocator pools
grow once at the start; that is not a leak).

Verdict (exit 0 / 1): /stats connections, users and registry_entries back to their start
values, retained_users back to 0, and RSS growth since the warm-up within
`--max-rss-growth-mb`. Growth per 10,000 cycles is printed either way.
Everything is on 127.0.0.1 and bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from client import ProtocolClient  # noqa: E402
from client.errors import SocketproofError  # noqa: E402
from client.tokens import mint_admin_token, mint_token  # noqa: E402
from server.process import ServerProcess  # noqa: E402

SECRET = "soak-secret-0123456789-0123456789-0123456789"
SETTINGS = {
    "jwt_secret": SECRET,
    "heartbeat_interval": 1,
    "heartbeat_timeout": 1,
    "queue_ttl": 3,
    "rate_limit": 0,
    "max_connections_per_user": 50,
}
REGISTRY_KEYS = ("connections", "users", "registry_entries", "retained_users")


def stats(http_url: str) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(http_url + "/stats")
    request.add_header("Authorization", f"Bearer {mint_admin_token(SECRET, ttl=600)}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class Soak:
    def __init__(self, ws_url: str, users: int, seed: int) -> None:
        self.ws_url = ws_url
        self.users = [f"soak-{n}" for n in range(users)]
        self.tokens = {user: mint_token(SECRET, user, ttl=24 * 3600) for user in self.users}
        self.cycles = 0
        self.errors = 0
        self.messages = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.seed = seed

    def worker(self, n: int) -> None:
        rng = random.Random(self.seed + n)
        last_seq: dict[str, int] = {}
        while not self.stop.is_set():
            user, peer = rng.sample(self.users, 2)
            client = ProtocolClient(self.ws_url, token=self.tokens[user], timeout=10, label=f"soak-{n}")
            ok = False
            try:
                resume = last_seq.get(user) if rng.random() < 0.5 else None
                session = client.connect(resume)
                seen = [m["seq"] for m in session.replayed] + [session.welcome["last_seq"]]
                client.echo({"n": self.cycles})
                client.send(peer, "x" * rng.choice([8, 64, 512]))
                if rng.random() < 0.3:
                    client.send(user, "to self")
                    push = client.next_push(10)
                    seen.append(push.get("seq", 0))
                last_seq[user] = max(seen)
                ok = True
            except SocketproofError:
                pass
            finally:
                if rng.random() < 0.3:
                    client.drop()  # abrupt: the server must notice and forget it
                else:
                    client.close()
            with self.lock:
                self.cycles += 1
                self.messages += 2 if ok else 0
                self.errors += 0 if ok else 1


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def progress(elapsed: float, duration: float, sample: dict[str, Any]) -> None:
    """One line per sample on stderr (stdout stays the result): a long soak shows it is alive."""
    left = max(0.0, duration - elapsed)
    print(f"soak {elapsed:.0f}s of {duration:.0f}s ({left:.0f}s left): {sample['cycles']:,} cycles, "
          f"server rss {sample['rss_mb']:.1f} MB", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of cycling (default 600)")
    parser.add_argument("--workers", type=int, default=4, help="concurrent client threads (default 4)")
    parser.add_argument("--users", type=int, default=50, help="identities to cycle through (default 50)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds before the RSS baseline (default 10%%, 2-30 s)"
    )
    parser.add_argument("--max-rss-growth-mb", type=float, default=20.0, help="allowed RSS growth after warm-up")
    parser.add_argument(
        "--sample-every", type=float, default=None, help="seconds between samples (default duration/20)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(30.0, max(2.0, args.duration * 0.1))
    every = args.sample_every or max(1.0, args.duration / 20)

    child = ServerProcess(SETTINGS)
    child.start()
    assert child.process is not None
    pid = child.process.pid
    try:
        start_stats = stats(child.http_url)
        start_rss = rss(pid)
        soak = Soak(child.ws_url, args.users, args.seed)
        threads = [threading.Thread(target=soak.worker, args=(n,), daemon=True) for n in range(args.workers)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        samples: list[dict[str, Any]] = []
        warm: dict[str, Any] | None = None
        next_sample = started
        while (elapsed := time.monotonic() - started) < args.duration:
            if warm is None and elapsed >= warmup:
                warm = {"t": round(elapsed, 1), "cycles": soak.cycles, "rss": rss(pid)}
            if time.monotonic() >= next_sample:
                current = stats(child.http_url)
                samples.append({"t": round(elapsed, 1), "cycles": soak.cycles, "rss_mb": round(rss(pid) / 2**20, 2),
                                **{key: current[key] for key in REGISTRY_KEYS}})
                next_sample += every
                progress(elapsed, args.duration, samples[-1])
            time.sleep(min(0.2, max(0.0, args.duration - elapsed)))
        soak.stop.set()
        for thread in threads:
            thread.join(30)
        ran = time.monotonic() - started
        # Let heartbeats catch the dropped ones and queue_ttl forget idle users.
        settle = SETTINGS["heartbeat_interval"] + SETTINGS["heartbeat_timeout"] + SETTINGS["queue_ttl"] + 2
        deadline = time.monotonic() + settle + 10
        while True:
            end_stats = stats(child.http_url)
            if all(end_stats[key] <= start_stats[key] for key in REGISTRY_KEYS) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        end_rss = rss(pid)
    finally:
        code = child.stop()
    if warm is None:
        warm = {"t": 0.0, "cycles": 0, "rss": start_rss}
    cycles_after_warm = max(1, soak.cycles - warm["cycles"])
    growth = end_rss - warm["rss"]
    result = {
        "duration_s": round(ran, 1),
        "workers": args.workers,
        "cycles": soak.cycles,
        "cycles_per_s": round(soak.cycles / ran, 1),
        "failed_cycles": soak.errors,
        "rss_start_mb": round(start_rss / 2**20, 2),
        "rss_warm_mb": round(warm["rss"] / 2**20, 2),
        "rss_end_mb": round(end_rss / 2**20, 2),
        "rss_growth_after_warmup_mb": round(growth / 2**20, 3),
        "rss_growth_per_10k_cycles_mb": round(growth / 2**20 * 10_000 / cycles_after_warm, 3),
        "stats_start": {key: start_stats[key] for key in REGISTRY_KEYS},
        "stats_end": {key: end_stats[key] for key in REGISTRY_KEYS},
        "registry_growth_per_10k_cycles": round(
            (end_stats["registry_entries"] - start_stats["registry_entries"]) * 10_000 / max(1, soak.cycles), 3
        ),
        "server_exit": code,
        "samples": samples,
    }
    problems = []
    for key in REGISTRY_KEYS:
        if end_stats[key] > start_stats[key]:
            problems.append(f"/stats {key}: {start_stats[key]} at the start, {end_stats[key]} at the end")
    if growth / 2**20 > args.max_rss_growth_mb:
        problems.append(f"RSS grew {growth / 2**20:.1f} MB after the warm-up (limit {args.max_rss_growth_mb} MB)")
    if soak.cycles == 0 or soak.errors > soak.cycles // 2:
        problems.append(f"{soak.errors} of {soak.cycles} cycles failed")
    if code != 0:
        problems.append(f"the server exited with {code}")
    result["ok"] = not problems
    result["problems"] = problems
    print(f"soak: {soak.cycles} cycles in {ran:.0f}s ({result['cycles_per_s']}/s, {args.workers} workers), "
          f"{soak.errors} failed")
    print(f"server RSS: start {result['rss_start_mb']} MB, after warm-up {result['rss_warm_mb']} MB, "
          f"end {result['rss_end_mb']} MB -> {result['rss_growth_per_10k_cycles_mb']} MB per 10,000 cycles")
    print(f"/stats start {result['stats_start']} end {result['stats_end']} "
          f"-> registry_entries {result['registry_growth_per_10k_cycles']} per 10,000 cycles")
    print("verdict: " + ("OK" if result["ok"] else "FAILED: " + "; ".join(problems)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
