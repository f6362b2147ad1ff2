"""`locust --proxy-faults SPEC`: the fault proxy in front of the run's target, for the run.

`start_for_run(environment)` is called once the target is known (the embedded server or
--host): it starts `python -m socketproof.proxy` in front of it, points `environment.host`
at the proxy, and at quit stops it, writes `proxy-faults.json` next to checks.json and
prints one line of counts, so a verdict can be read against what was injected.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from client.urls import split_host
from socketproof.proxy.control import ProxyError, ProxyProcess, parse_upstream
from socketproof.proxy.faults import FaultSpecError, parse_spec
from socketproof.proxy.relay import format_counts

log = logging.getLogger("socketproof")

REPORT_NAME = "proxy-faults.json"


class RunProxy:
    """The proxy of one Locust run: its process, where its counts go, and the counts once stopped."""

    def __init__(self, process: ProxyProcess, target: str, report_dir: str) -> None:
        self.process = process
        self.target = target
        self.report_dir = report_dir
        self.final: dict[str, Any] | None = None

    def stop(self) -> dict[str, Any] | None:
        """Stop the proxy (once) and write its counts to the report folder."""
        if self.final is not None or self.process.process is None:
            return self.final
        counts = self.process.stop()
        if counts is None:
            log.error("the fault proxy did not report its counts:\n%s", "".join(self.process.output)[-2000:])
            self.final = {}
            return self.final
        self.final = {**counts, "target": self.target, "proxy": self.process.url}
        try:
            folder = Path(self.report_dir)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / REPORT_NAME).write_text(json.dumps(self.final, indent=2) + "\n")
        except OSError as error:
            log.error("cannot write %s to %s: %s", REPORT_NAME, self.report_dir, error)
        return self.final

    def print_line(self) -> None:
        if self.final:
            print(format_counts(self.final), flush=True)


def start_for_run(environment: Any) -> RunProxy | None:
    """With --proxy-faults, put the proxy in front of environment.host (ValueError: bad options)."""
    parsed = environment.parsed_options
    text = str(getattr(parsed, "proxy_faults", "") or "").strip() if parsed is not None else ""
    if not text or not environment.host:
        return None
    seed = getattr(parsed, "proxy_seed", None)
    target = environment.host
    try:
        spec = parse_spec(text)
        base, path = split_host(target)
        parse_upstream(base)
        if seed is not None:
            seed = int(seed)
    except (FaultSpecError, ProxyError) as error:
        raise ValueError(str(error)) from None
    process = ProxyProcess(base, spec.describe() if spec else "", seed)
    try:
        url = process.start()
    except RuntimeError as error:
        raise ValueError(str(error)) from None
    report_dir = str(getattr(parsed, "checks_report", None) or "reports")
    run_proxy = RunProxy(process, target, report_dir)
    environment.host = url + path
    log.info("fault proxy %s in front of %s (faults: %s)", url, base, spec.describe())
    environment.events.quitting.add_listener(lambda **_: run_proxy.stop())
    environment.events.quit.add_listener(lambda **_: run_proxy.print_line())
    return run_proxy


def target_behind(run_proxy: RunProxy | None, host: str | None) -> str:
    """The host the users' traffic really goes to: the proxy's target while the run's host is the
    proxy (the pre-flight asks the target itself: a proxy fault could drop its start-up)."""
    host = host or ""
    if run_proxy is not None and run_proxy.process.url and host.startswith(run_proxy.process.url):
        return run_proxy.target
    return host
