"""Where the Locust echo spends its CPU: runs the bench's Locust child under py-spy.

    .venv/bin/python bench/profile_echo.py [--duration 12] [--connections 50] [--top 30]

Same setup as bench/locust_echo.py (server with rate_limit=0 on CPU 0, one Locust
process with N recorded EchoUsers on CPU 1), sampled by `py-spy record --format raw`
(needs `pip install py-spy`). Prints the functions with the most self time and the
most inclusive time; the collapsed stacks go to bench/results/profile_echo.txt.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.locust_echo import CLIENT_CPU, SERVER_CPU, locust_cmd, pin, raise_nofile  # noqa: E402
from server.process import ServerProcess  # noqa: E402

OUT = ROOT / "bench" / "results" / "profile_echo.txt"


def summarize(path: Path, top: int) -> None:
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for raw in path.read_text().splitlines():
        stack, _, n = raw.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        self_t[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    print(f"{total} samples")
    print("\n-- self time --")
    for f, n in self_t.most_common(top):
        print(f"{n / total:6.1%}  {f}")
    print("\n-- inclusive time --")
    for f, n in incl.most_common(top):
        print(f"{n / total:6.1%}  {f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        parser.error("py-spy not found: .venv/bin/pip install py-spy")
    raise_nofile()
    server = ServerProcess({"rate_limit": 0})
    try:
        url = server.start()
        assert server.process is not None
        pin(server.process.pid, SERVER_CPU)
        host = url.rsplit("/ws", 1)[0]
        OUT.parent.mkdir(parents=True, exist_ok=True)
        cmd = [py_spy, "record", "--format", "raw", "--rate", str(args.rate), "--nonblocking",
               "-o", str(OUT), "--", *locust_cmd(host, args.connections, args.duration)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CPU}))
        try:
            _, err = proc.communicate(timeout=args.duration + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not OUT.exists():
            print(err[-3000:], file=sys.stderr)
            return 1
    finally:
        server.stop()
    summarize(OUT, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
