"""What Socketproof's recording and end-of-run checks cost in Locust throughput.

    .venv/bin/python bench/checks_overhead.py [--duration 15] [--users 20] [--repeat 3]

Starts one reference server (SOCKETPROOF_RATE_LIMIT=0) pinned to CPU 0, then per
repetition runs `locust -f bench/checks_locustfile.py --headless` twice, pinned to CPU 1,
in alternating order:

- `checks`: every connection recorded, `--checks all` (every registered check) and a timing threshold;
- `off`: no recorder on any connection ($BENCH_RECORD=0, a bench-only switch) and
  `--checks timing` with no threshold, so no check runs at all.

Each run measures echo + send requests/s over a steady-state window (bench/_window.py,
after --warmup s), so start-up and the end-of-run judging stay out of the rate; the
judging is measured separately as the time from the run's end to Locust's exit.
Prints one line per run, the medians and the ratio checks/off (goal >= 0.95), and
writes bench/results/checks_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.process import ServerProcess  # noqa: E402

PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results" / "checks_overhead.json"
SERVER_CPU, CLIENT_CPU = 0, 1
GOAL = 0.95
MODES = {
    "checks": ({"BENCH_RECORD": "1"}, ["--checks", "all", "--threshold", "echo:p99<5000"]),
    "off": ({"BENCH_RECORD": "0"}, ["--checks", "timing"]),
}


def pin(pid: int, cpu: int) -> None:
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            pass


def locust_cmd(host: str, users: int, duration: float, report_dir: str, extra: list[str]) -> list[str]:
    return [PYTHON, "-m", "locust", "-f", "bench/checks_locustfile.py", "--headless", "-u", str(users),
            "-r", str(users), "-t", f"{int(duration)}s", "--host", host, "--identities", str(users),
            "--stop-timeout", "5", "--loglevel", "WARNING", "--only-summary", "--checks-report", report_dir,
            *extra]


def run_once(mode: str, host: str, args: argparse.Namespace, window: float) -> dict[str, Any]:
    env_mode, extra = MODES[mode]
    with tempfile.TemporaryDirectory(prefix="checks-overhead-") as tmp:
        out = os.path.join(tmp, "window.json")
        env = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
        env.update(env_mode, BENCH_OUT=out, BENCH_WARMUP=str(args.warmup), BENCH_WINDOW=str(window),
                   PYTHONUNBUFFERED="1")
        started = time.perf_counter()
        proc = subprocess.Popen(locust_cmd(host, args.users, args.duration, tmp, extra), cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CPU}))
        try:
            stdout, stderr = proc.communicate(timeout=args.duration + 90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeError(f"{mode} run did not end within {args.duration + 90:.0f}s") from None
        wall = time.perf_counter() - started
        try:
            measured = json.loads(Path(out).read_text())
        except (OSError, ValueError):
            raise RuntimeError(f"{mode} run wrote no measurement (exit {proc.returncode}):\n{stderr[-3000:]}") from None
        checks_path = Path(tmp) / "checks.json"
        checks = json.loads(checks_path.read_text()) if checks_path.exists() else {}
    return {
        "mode": mode,
        "exit_code": proc.returncode,
        "requests_per_s": measured["rt_per_s"],
        "requests": measured["round_trips"],
        "failures": measured["failures"],
        "window_s": measured["seconds"],
        "client_cpu_util": measured["cpu_util"],
        "client_cpu_us_per_request": measured["cpu_us_per_rt"],
        "after_run_s": wall - args.duration,
        "connections_recorded": checks.get("connections"),
        "verdicts": {v["name"]: v["valid"] for v in checks.get("verdicts", [])},
        "stderr_tail": stderr[-1500:] if proc.returncode != 0 else "",
        "stdout_tail": stdout[-1500:] if proc.returncode != 0 else "",
    }


def line(rep: int, r: dict[str, Any]) -> str:
    verdicts = ",".join(f"{k}={'T' if v is True else v}" for k, v in r["verdicts"].items()) or "-"
    return (f"rep {rep} {r['mode']:>6}: {r['requests_per_s']:8.0f} req/s  "
            f"{r['client_cpu_us_per_request']:6.1f} us/req client (CPU {r['client_cpu_util']:.0%})  "
            f"failures {r['failures']}  end-of-run {r['after_run_s']:4.1f}s  exit {r['exit_code']}  "
            f"connections recorded {r['connections_recorded']}  verdicts {verdicts}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per Locust run (default 15)")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before the window opens (default 4)")
    parser.add_argument("--users", type=int, default=20, help="Locust users, one connection each (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions of each mode (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"result file (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    window = args.duration - args.warmup - 1.0
    if window < 2:
        parser.error("--duration must be at least --warmup + 3 seconds")
    if args.users < 1 or args.repeat < 1:
        parser.error("--users and --repeat must be at least 1")
    if (os.cpu_count() or 1) < 2:
        parser.error("needs two CPUs (server on CPU 0, Locust on CPU 1)")
    server = ServerProcess({"rate_limit": 0})
    runs: list[dict[str, Any]] = []
    try:
        url = server.start()
        assert server.process is not None
        pin(server.process.pid, SERVER_CPU)
        host = url.rsplit("/ws", 1)[0]
        print(f"server {url} (rate_limit=0) on CPU {SERVER_CPU}; Locust on CPU {CLIENT_CPU}; {args.users} users, "
              f"{args.duration:.0f}s runs, window {window:.0f}s, {args.repeat} repetitions", flush=True)
        for rep in range(1, args.repeat + 1):
            for mode in (["checks", "off"] if rep % 2 else ["off", "checks"]):
                r = run_once(mode, host, args, window)
                r["rep"] = rep
                runs.append(r)
                print(line(rep, r), flush=True)
                if r["stderr_tail"]:
                    print(r["stdout_tail"], r["stderr_tail"], sep="\n", file=sys.stderr)
    finally:
        server.stop()

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["mode"] == mode)

    summary = {
        "checks_requests_per_s": median("checks", "requests_per_s"),
        "off_requests_per_s": median("off", "requests_per_s"),
        "checks_cpu_us_per_request": median("checks", "client_cpu_us_per_request"),
        "off_cpu_us_per_request": median("off", "client_cpu_us_per_request"),
        "checks_after_run_s": median("checks", "after_run_s"),
        "off_after_run_s": median("off", "after_run_s"),
    }
    summary["ratio"] = summary["checks_requests_per_s"] / summary["off_requests_per_s"]
    summary["ratio_per_rep"] = [
        c["requests_per_s"] / o["requests_per_s"]
        for c, o in zip([r for r in runs if r["mode"] == "checks"], [r for r in runs if r["mode"] == "off"],
                        strict=True)
    ]
    met = summary["ratio"] >= GOAL
    print(f"median checks: {summary['checks_requests_per_s']:8.0f} req/s  "
          f"{summary['checks_cpu_us_per_request']:6.1f} us/req  end-of-run {summary['checks_after_run_s']:.1f}s")
    print(f"median off   : {summary['off_requests_per_s']:8.0f} req/s  "
          f"{summary['off_cpu_us_per_request']:6.1f} us/req  end-of-run {summary['off_after_run_s']:.1f}s")
    print(f"ratio checks/off: {summary['ratio']:.3f} (per repetition "
          f"{', '.join(f'{x:.3f}' for x in summary['ratio_per_rep'])})  goal >= {GOAL}: {'met' if met else 'NOT met'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join(["bench/checks_overhead.py", *(argv if argv is not None else sys.argv[1:])]),
        "settings": {"duration": args.duration, "warmup": args.warmup, "window": window, "users": args.users,
                     "repeat": args.repeat, "server_settings": {"rate_limit": 0}, "server_cpu": SERVER_CPU,
                     "client_cpu": CLIENT_CPU, "modes": {k: {"env": e, "args": a} for k, (e, a) in MODES.items()}},
        "goal": {"ratio": GOAL},
        "goal_met": met,
        "summary": summary,
        "runs": runs,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["failures"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
