"""Locust echo throughput next to the bare websocket-client loop, interleaved.

    .venv/bin/python bench/locust_echo.py [--duration 15] [--connections 50] [--repeat 3]

Starts the reference server (rate_limit=0) pinned to CPU 0, then per repetition runs
(a) bench/bare_echo.py and (b) one `locust -f bench/echo_locustfile.py --headless` process
with N recorded EchoUsers, each pinned to CPU 1, in alternating order. Each child measures
a steady-state window itself (bench/_window.py: round trips from its own counter or
Locust's stats, CPU from getrusage(RUSAGE_SELF)); the parent adds whole-process CPU
(RUSAGE_CHILDREN deltas) and the server's CPU over the same window. Prints one line per
run, the medians and the ratio, and writes bench/results/locust_echo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from server.process import ServerProcess  # noqa: E402

PYTHON = sys.executable
LOCUST = str(Path(PYTHON).with_name("locust"))
RESULTS = ROOT / "bench" / "results" / "locust_echo.json"
SERVER_CPU, CLIENT_CPU = 0, 1
GOALS = {"locust_rt_per_s": 8000, "ratio": 0.8, "locust_cpu_us_per_rt": 50}


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin(pid: int, cpu: int) -> None:
    """Pin every thread of a running process to one CPU."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except (ProcessLookupError, OSError):
            pass


def busy_cpu() -> float:
    """CPU seconds the whole machine has spent not idle."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


class CpuSampler:
    """Samples a process's CPU time (and the machine's) a few times a second, to read them
    over a child's window: the machine's busy time minus server and client shows whether
    something else ran during the measurement."""

    def __init__(self, pid: int, period: float = 0.1) -> None:
        self.proc = psutil.Process(pid)
        self.period = period
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                t = self.proc.cpu_times()
            except psutil.Error:
                return
            self.samples.append((time.time(), t.user + t.system, busy_cpu()))

    def between(self, t0: float, t1: float, machine: bool = False) -> float | None:
        """CPU seconds the process (or the whole machine) used between t0 and t1, or None."""
        if not self.samples:
            return None

        def at(t: float) -> tuple[float, float, float]:
            return min(self.samples, key=lambda s: abs(s[0] - t))

        a, b = at(t0), at(t1)
        if b[0] <= a[0]:
            return None
        i = 2 if machine else 1
        return (b[i] - a[i]) / (b[0] - a[0]) * (t1 - t0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def wait_quiet(limit: float, timeout: float) -> float:
    """Wait (at most `timeout` s) until the rest of the machine uses under `limit` CPUs for
    a second: other people's jobs on a 2-CPU box skew both figures. Returns the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        b0 = busy_cpu()
        time.sleep(1.0)
        load = busy_cpu() - b0
        if load < limit or time.monotonic() >= deadline:
            return load


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_child(kind: str, cmd: list[str], env_extra: dict[str, str], duration: float,
              server: CpuSampler, cwd: Path = ROOT) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = {**os.environ, **env_extra, "BENCH_OUT": out, "PYTHONUNBUFFERED": "1"}
    cpu0 = children_cpu()
    wall0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CPU}))
    try:
        stdout, stderr = proc.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise RuntimeError(f"{kind} run did not end in time:\n{stderr[-3000:]}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    whole_cpu = children_cpu() - cpu0
    wall = time.perf_counter() - wall0
    try:
        window = json.loads(Path(out).read_text())
    except (OSError, ValueError):
        raise RuntimeError(f"{kind} run wrote no measurement (exit {proc.returncode}):\n{stderr[-3000:]}") from None
    finally:
        Path(out).unlink(missing_ok=True)
    total = None
    if kind.startswith("locust"):
        try:
            stats, _ = json.JSONDecoder().raw_decode(stdout.lstrip())  # the checks table may follow
            total = sum(s["num_requests"] for s in stats)
        except (ValueError, KeyError, TypeError):
            total = None
    else:
        try:
            total = json.loads(stdout.strip().splitlines()[-1])["round_trips"]
        except (ValueError, IndexError, KeyError):
            total = None
    srv = server.between(window["wall_t0"], window["wall_t1"])
    machine = server.between(window["wall_t0"], window["wall_t1"], machine=True)
    other = machine - srv - window["cpu_s"] if machine is not None and srv is not None else None
    return {
        "kind": kind,
        "exit_code": proc.returncode,
        **window,
        "server_cpu_util": srv / window["seconds"] if srv is not None else None,
        "server_cpu_us_per_rt": srv / window["round_trips"] * 1e6 if srv and window["round_trips"] else None,
        "other_cpu_util": max(0.0, other / window["seconds"]) if other is not None else None,
        "whole_process_round_trips": total,
        "whole_process_cpu_s": whole_cpu,
        "whole_process_wall_s": wall,
        "stderr_tail": stderr[-1500:] if proc.returncode not in (0,) else "",
    }


def extract_tree(rev: str) -> Path:
    """The repository's files at `rev` in a temporary folder (git archive): the baseline's own
    client, users and locustfile, run with this virtualenv."""
    target = Path(tempfile.mkdtemp(prefix="socketproof-baseline-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"locust_echo.py: error: cannot read revision {rev!r}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def bare_cmd(url: str, n: int, duration: float) -> list[str]:
    return [PYTHON, "bench/bare_echo.py", "--url", url, "--connections", str(n), "--duration", str(duration)]


def locust_cmd(host: str, n: int, duration: float) -> list[str]:
    return [LOCUST, "-f", "bench/echo_locustfile.py", "--headless", "-u", str(n), "-r", str(n),
            "-t", f"{int(duration)}s", "--host", host, "--only-summary", "--json",
            "--identities", str(n), "--stop-timeout", "5", "--loglevel", "WARNING",
            "--checks-report", str(Path(tempfile.gettempdir()) / "socketproof-bench-reports")]


def line(rep: int, r: dict[str, Any]) -> str:
    srv = r["server_cpu_util"]
    return (f"rep {rep} {r['kind']:>10}: {r['rt_per_s']:8.0f} rt/s  {r['cpu_us_per_rt']:5.1f} us/rt client "
            f"(CPU: client {r['cpu_util']:.0%}, server {srv:.0%}, other processes {r['other_cpu_util']:.0%})  "
            f"failures {r['failures']}  exit {r['exit_code']}"
            if srv is not None else f"rep {rep} {r['kind']}: {r['rt_per_s']:.0f} rt/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run (default 15)")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before the window opens (default 4)")
    parser.add_argument("--connections", type=int, default=50, help="connections / Locust users (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions (default 3)")
    parser.add_argument("--quiet-cpu", type=float, default=0.15,
                        help="before each run, wait until other processes use under this many CPUs (default 0.15)")
    parser.add_argument("--quiet-timeout", type=float, default=60.0,
                        help="longest wait for that, seconds (default 60; 0 = do not wait)")
    parser.add_argument("--max-other-cpu", type=float, default=0.15,
                        help="a run during which other processes used more CPUs than this is marked "
                             "contaminated and left out of the medians while clean runs of its kind exist")
    parser.add_argument("--baseline-rev", default=None, metavar="REV",
                        help="also run the same Locust load from the whole tree at git revision REV (e.g. the "
                             "commit before a client change), as kind `locust_ref`: before/after in one run")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"result file (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    window = args.duration - args.warmup - 1.0
    if window < 2:
        parser.error("--duration must be at least --warmup + 3 seconds")
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        parser.error("needs two CPUs (server on CPU 0, client on CPU 1)")
    raise_nofile()
    baseline_dir = extract_tree(args.baseline_rev) if args.baseline_rev else None
    env_extra = {"BENCH_WARMUP": str(args.warmup), "BENCH_WINDOW": str(window)}
    server = ServerProcess({"rate_limit": 0})
    runs: list[dict[str, Any]] = []
    sampler = None
    try:
        url = server.start()
        assert server.process is not None
        pin(server.process.pid, SERVER_CPU)
        sampler = CpuSampler(server.process.pid)
        host = url.rsplit("/ws", 1)[0]
        print(f"server {url} on CPU {SERVER_CPU}; clients on CPU {CLIENT_CPU}; "
              f"{args.connections} connections, {args.duration:.0f}s runs, window {window:.0f}s", flush=True)
        for rep in range(1, args.repeat + 1):
            kinds = ["bare", "locust"] + (["locust_ref"] if baseline_dir else [])
            shift = (rep - 1) % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                cmd = (bare_cmd(url, args.connections, args.duration) if kind == "bare"
                       else locust_cmd(host, args.connections, args.duration))
                extra = dict(env_extra)
                cwd = baseline_dir if kind == "locust_ref" and baseline_dir else ROOT
                load = wait_quiet(args.quiet_cpu, args.quiet_timeout) if args.quiet_timeout > 0 else None
                try:
                    r = run_child(kind, cmd, extra, args.duration, sampler, cwd)
                except RuntimeError as exc:  # one broken run is reported, the others still count
                    print(f"rep {rep} {kind}: failed: {exc}", file=sys.stderr, flush=True)
                    runs.append({"kind": kind, "rep": rep, "error": str(exc)[-3000:], "exit_code": None})
                    continue
                r["rep"] = rep
                r["machine_load_before"] = load
                runs.append(r)
                print(line(rep, r), flush=True)
                if r["stderr_tail"]:
                    print(r["stderr_tail"], file=sys.stderr)
    finally:
        if sampler is not None:
            sampler.stop()
        server.stop()

    failed = [r for r in runs if "error" in r]
    good = [r for r in runs if "error" not in r]
    for r in good:
        other = r.get("other_cpu_util")
        r["contaminated"] = other is not None and other > args.max_other_cpu

    kinds = sorted({r["kind"] for r in good})
    # Clean runs only when every kind has one; otherwise all runs for every kind (never a
    # clean figure of one kind against contaminated figures of the other).
    use_clean = all(any(r["kind"] == k and not r["contaminated"] for r in good) for k in kinds)

    def pick(kind: str) -> list[dict[str, Any]]:
        return [r for r in good if r["kind"] == kind and not (use_clean and r["contaminated"])]

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in pick(kind) if r[key] is not None)

    summary = {
        "bare_rt_per_s": med("bare", "rt_per_s"),
        "bare_cpu_us_per_rt": med("bare", "cpu_us_per_rt"),
        "locust_rt_per_s": med("locust", "rt_per_s"),
        "locust_cpu_us_per_rt": med("locust", "cpu_us_per_rt"),
        "bare_server_cpu_us_per_rt": med("bare", "server_cpu_us_per_rt"),
        "locust_server_cpu_us_per_rt": med("locust", "server_cpu_us_per_rt"),
    }
    ratios = [lo["rt_per_s"] / ba["rt_per_s"] for lo, ba in zip(
        [r for r in good if r["kind"] == "locust"], [r for r in good if r["kind"] == "bare"], strict=False)]
    summary["ratio"] = summary["locust_rt_per_s"] / summary["bare_rt_per_s"]
    summary["runs_used"] = {kind: len(pick(kind)) for kind in kinds}
    summary["clean_runs_only"] = use_clean
    summary["runs_contaminated"] = sum(r["contaminated"] for r in good)
    summary["runs_failed"] = len(failed)
    summary["ratio_per_rep"] = ratios
    if baseline_dir:
        summary["locust_ref_rt_per_s"] = med("locust_ref", "rt_per_s")
        summary["locust_ref_cpu_us_per_rt"] = med("locust_ref", "cpu_us_per_rt")
        summary["locust_ref_ratio"] = summary["locust_ref_rt_per_s"] / summary["bare_rt_per_s"]
        summary["locust_ref_rev"] = args.baseline_rev
        summary["cpu_per_rt_vs_baseline"] = summary["locust_cpu_us_per_rt"] / summary["locust_ref_cpu_us_per_rt"]
    met = {
        "locust_rt_per_s": summary["locust_rt_per_s"] >= GOALS["locust_rt_per_s"],
        "ratio": summary["ratio"] >= GOALS["ratio"],
        "locust_cpu_us_per_rt": summary["locust_cpu_us_per_rt"] <= GOALS["locust_cpu_us_per_rt"],
    }
    print(f"medians over {summary['runs_used']} runs; {summary['runs_contaminated']} runs contaminated "
          f"(other processes > {args.max_other_cpu} CPUs), "
          + ("left out" if use_clean else "kept: not every kind had a clean run, figures are noisy"))
    print(f"median bare  : {summary['bare_rt_per_s']:8.0f} rt/s  {summary['bare_cpu_us_per_rt']:5.1f} us/rt")
    print(f"median locust: {summary['locust_rt_per_s']:8.0f} rt/s  {summary['locust_cpu_us_per_rt']:5.1f} us/rt")
    if baseline_dir:
        print(f"median locust at {args.baseline_rev}: {summary['locust_ref_rt_per_s']:8.0f} rt/s  "
              f"{summary['locust_ref_cpu_us_per_rt']:5.1f} us/rt  (ratio to bare {summary['locust_ref_ratio']:.2f}); "
              f"client CPU per round trip now / then: {summary['cpu_per_rt_vs_baseline']:.3f}")
    print(f"ratio locust/bare: {summary['ratio']:.2f}  goals met: {met}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join(["bench/locust_echo.py", *(argv if argv is not None else sys.argv[1:])]),
        "settings": {"duration": args.duration, "warmup": args.warmup, "window": window,
                     "quiet_cpu": args.quiet_cpu, "quiet_timeout": args.quiet_timeout,
                     "connections": args.connections, "repeat": args.repeat,
                     "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU, "server_settings": {"rate_limit": 0}},
        "goals": GOALS,
        "goals_met": met,
        "summary": summary,
        "runs": runs,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if not failed and all(r["exit_code"] == 0 and r["failures"] == 0 for r in good) else 1


if __name__ == "__main__":
    sys.exit(main())
