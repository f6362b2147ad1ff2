"""Every command in README.md runs, as written, so the README cannot rot.

The README's code blocks are parsed; each command is run with only these changes, each of
them a bound or a stand-in, never a different command:

- `.venv/bin/` is this venv's bin, and the set-up part of the two "Run it" one-liners
  (`python3 -m venv .venv && .venv/bin/pip install ...`) is not re-run: it is checked to be
  character for character the one `.ci/run` runs (which runs the test one-liner whole);
- placeholders (`ws://your-host:port`, `$YOUR_SECRET`, `$YOUR_ADMIN_TOKEN`, `192.0.2.10`) are a
  reference server started here, with its own secret, and 127.0.0.1 (for `--protocol stomp` and
  `mqtt`: a private RabbitMQ, whose credentials are `$YOUR_BROKER_USER`/`$YOUR_BROKER_PASSWORD`);
- run lengths are bounded: LOCUST_RUN_TIME/LOCUST_USERS in the environment (they override
  locust.conf, not the command line) and a few explicit long values shortened (BOUNDS);
- services (the web UI, `python -m server`) are started, seen answering, and stopped;
- `python -m pytest` with no test path is collected (`--collect-only`), not run: it is the suite this is in.

Commands run in README order in one scratch folder (with links to locust.conf, locustfiles and docs),
so reports/ and the capacity baselines the README refers to are the ones earlier commands wrote.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.tokens import mint_admin_token
from tests.socketproof.support import ROOT, clean_environment
from tests.support.server import running_server
from tests.user.support import BIN, free_port, stop_group, wait_until

README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
SETUP = "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
SECRET = "readme-secret-of-your-own-server-0123456789"
BOUNDS = {
    "--run-time 2m": "--run-time 6s",
    "--step-users 100": "--step-users 10",
    "--step-time 10s": "--step-time 3s",
    "--max-users 1500": "--max-users 20",
    "--identities 1500": "--identities 20",
}
BOUND_ENV = {"LOCUST_RUN_TIME": "6s", "LOCUST_USERS": "10", "LOCUST_SPAWN_RATE": "10"}
RUN_TIMEOUT = 240


@dataclasses.dataclass(frozen=True)
class Command:
    text: str
    line: int
    language: str

    @property
    def id(self) -> str:
        return f"L{self.line}:" + re.sub(r"\s+", " ", self.text.removeprefix(SETUP + " && "))[:70]


def readme_commands(text: str | None = None) -> list[Command]:
    """Commands of the bash blocks (continuations joined) and `run:` steps of the yaml blocks."""
    lines = (text if text is not None else README.read_text()).splitlines()
    commands: list[Command] = []
    language, pending, start = None, "", 0
    for number, line in enumerate(lines, 1):
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            language = None if language is not None else (fence.group(1) or "text")
            continue
        if language == "bash":
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            start = start if pending else number
            pending += (" " if pending else "") + stripped.rstrip("\\").strip()
            if not stripped.endswith("\\"):
                commands.append(Command(pending, start, "bash"))
                pending = ""
        elif language == "yaml" and (step := re.match(r"^\s*- run: (.+)$", line)):
            commands.append(Command(step.group(1).strip(), number, "yaml"))
    return commands


COMMANDS = [command for command in readme_commands() if command.language == "bash"]


def test_readme_parses_into_the_commands_it_documents() -> None:
    """The parser itself can fail: a known README snippet gives exactly these commands."""
    sample = "x\n```bash\n# note\na --b \\\n    --c d\n\ne\n```\n```yaml\n      - run: f g\n```\n```text\nno\n```\n"
    assert [(c.text, c.language) for c in readme_commands(sample)] == [
        ("a --b --c d", "bash"), ("e", "bash"), ("f g", "yaml")
    ]
    assert len(COMMANDS) >= 10, [c.text for c in COMMANDS]


def test_set_up_is_the_one_ci_runs() -> None:
    """The two one-liners share the set-up, and `.ci/run` runs the test one-liner as written."""
    one_liners = [c.text for c in COMMANDS if c.text.startswith("python3 ")]
    assert len(one_liners) == 2, one_liners
    for text in one_liners:
        assert text.startswith(SETUP + " && "), text
    ci_lines = [line.strip() for line in CI.read_text().splitlines()]
    test_line = next(text for text in one_liners if " -m pytest" in text)
    assert test_line in ci_lines, f"{test_line!r} is not a line of .ci/run"
    assert ci_lines.index(test_line) > ci_lines.index("rm -rf .venv"), "CI must start from a fresh venv"


def test_ci_snippet_runs_the_readme_commands() -> None:
    """The GitHub Actions steps are the README's own commands (so they are run below too)."""
    bash = {c.text for c in COMMANDS} | {SETUP}
    steps = [c.text for c in readme_commands() if c.language == "yaml"]
    assert steps, "no CI snippet"
    for step in steps:
        assert step in bash, f"CI step {step!r} is not a README command"


# -- running them ----------------------------------------------------------------------------


@dataclasses.dataclass
class Workspace:
    folder: Path
    server_url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    folder = tmp_path_factory.mktemp("readme")
    for name in ("locust.conf", "locustfiles", "requirements.txt", "docs"):
        (folder / name).symlink_to(ROOT / name)
    with running_server(jwt_secret=SECRET) as server:
        env = clean_environment({
            **BOUND_ENV,
            "PYTHONPATH": str(ROOT),
            "YOUR_SECRET": SECRET,
            "YOUR_ADMIN_TOKEN": mint_admin_token(SECRET, ttl=3600),
        })
        yield Workspace(folder, server.ws_url.rsplit("/ws", 1)[0], env)


def runnable(text: str, workspace: Workspace) -> str:
    """The README command with the stand-ins and bounds of the module docstring."""
    if text.startswith(SETUP + " && "):
        text = text[len(SETUP + " && "):]
    text = text.replace(".venv/bin/", f"{BIN}/").replace("ws://your-host:port", workspace.server_url)
    text = text.replace("192.0.2.10", "127.0.0.1")
    for long, short in BOUNDS.items():
        text = text.replace(long, short)
    return text


def run_shell(
    command: str, cwd: Path, env: dict[str, str], timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(process, grace=5)
        out, err = process.communicate()
        raise AssertionError(f"{command} did not finish in {timeout}s\n{out[-2000:]}\n{err[-3000:]}") from None
    stop_group(process, grace=5)  # nothing of it may outlive it
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def service(command: str, cwd: Path, env: dict[str, str], ready: str | None, url: str | None) -> int:
    """Start a long-running command, see it answer (a line on stdout, or HTTP 200), stop it; its exit code."""
    log = cwd / "service.log"
    with log.open("w") as output:
        process = subprocess.Popen(["bash", "-c", "exec " + command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            if ready:
                wait_until(lambda: process.poll() is not None or ready in log.read_text(), 60, f"{ready!r}")
            if url:
                wait_until(lambda: process.poll() is not None or urllib.request.urlopen(url, timeout=5).status == 200,
                           60, f"{url} to answer")
            assert process.poll() is None, f"{command} exited early:\n{log.read_text()[-3000:]}"
            process.send_signal(signal.SIGTERM)
            code = process.wait(30)
        finally:
            stop_group(process, grace=5)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    return code


def expected_codes(text: str) -> set[int]:
    if "SOCKETPROOF_FAULTS=drop" in text or "--proxy-faults drop" in text:
        return {1}  # the README says: exits 1 with loss FAIL
    if "--strict" in text or "--capacity" in text or "SOCKETPROOF_FAULTS" in text:
        return {0, 1}  # bounded runs: UNKNOWN under --strict, or a capacity verdict either way
    return {0}


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_readme_command_runs(command: Command, workspace: Workspace, request: pytest.FixtureRequest) -> None:
    text = runnable(command.text, workspace)
    words = shlex.split(text)
    program = next((w for w in words if "=" not in w or w.startswith("-")), "")
    env = dict(workspace.env)
    folder = workspace.folder

    if "pytest" in words and not any("tests/" in w for w in words):  # the suite itself: collected, not run
        result = run_shell(text + " --collect-only -q -n 0", ROOT, env)  # from inside it (-n 0: in-process)
        assert result.returncode == 0 and "tests/user/test_readme.py" in result.stdout, result.stdout[-2000:]
    elif "pytest" in words:  # the core tests against "your" server
        result = run_shell(text + " -q", ROOT, env)
        assert result.returncode == 0 and " passed" in result.stdout, result.stdout[-3000:]
    elif words[-3:] == ["-m", "server", "--port"] or words[-4:-1] == ["-m", "server", "--port"]:
        assert service(text, folder, env, ready="listening on ws://127.0.0.1:", url=None) == 0
    elif "socketproof.proxy" in words:  # the fault proxy on its own: prints its URL, stops at SIGTERM
        assert service(text, folder, env, ready="proxy listening on ws://127.0.0.1:", url=None) == 0
    elif program.endswith("/locust") and "--headless" not in words and "--worker" not in words:  # the web UI
        port = free_port()
        code = service(f"{text} --web-host 127.0.0.1 --web-port {port}", folder, env, None,
                       f"http://127.0.0.1:{port}/")
        assert code == 0
    elif "--master" in words:  # with two of the worker command that follows it
        worker = next(c for c in COMMANDS if c.line > command.line and "--worker" in c.text.split())
        assert "--expect-workers 2" in text
        run_distributed(text, runnable(worker.text, workspace), workspace)
    elif "--worker" in words:  # run (twice) by the master's case just before this one
        master = [c for c in COMMANDS if c.line < command.line and "--master" in c.text.split()]
        assert master, "a worker command needs the master command before it"
        assert command == next(c for c in COMMANDS if c.line > master[-1].line and "--worker" in c.text.split())
    elif program.endswith("/locust") and "--protocol" in words:  # another protocol: its own real server
        protocol = words[words.index("--protocol") + 1]
        broker = request.getfixturevalue("broker") if protocol in ("stomp", "mqtt") else None
        with foreign_server(protocol, workspace.env, broker) as (ws_url, http_url):
            run_headless(command.text, text.replace(workspace.server_url, ws_url)
                         .replace("http://your-host:port", http_url), workspace)
    elif program.endswith("/locust"):
        run_headless(command.text, text, workspace)
    else:
        raise AssertionError(f"README command with no rule to run it: {command.text}")


@contextlib.contextmanager
def foreign_server(protocol: str, env: dict[str, str], broker: Any = None) -> Iterator[tuple[str, str]]:
    """A real server of `protocol` (the tests' own apps), with the README's secret: (ws URL, http URL).
    For stomp and mqtt the session's private RabbitMQ (`broker`, tests/conftest.py), its credentials
    as $YOUR_BROKER_USER/$YOUR_BROKER_PASSWORD."""
    if protocol in ("stomp", "mqtt"):
        env.update(YOUR_BROKER_USER=broker.user, YOUR_BROKER_PASSWORD=broker.password)
        url = (broker.stomp_url if protocol == "stomp" else broker.mqtt_url).rsplit("/ws", 1)[0]
        try:
            yield url, url.replace("ws://", "http://")
        finally:
            env.pop("YOUR_BROKER_USER", None)
            env.pop("YOUR_BROKER_PASSWORD", None)
        return
    if protocol == "socketio":
        from apps.socketio_app import running_app as socketio_app

        with socketio_app(SECRET) as app:
            yield app.url.replace("http://", "ws://"), app.url
    elif protocol == "graphql-ws":
        from apps.graphql_app import running_app as graphql_app

        with graphql_app(SECRET) as app:
            yield app.url.replace("http://", "ws://"), app.url
    elif "json_chat_adapter" in protocol:
        from apps.json_chat_server import chat_server

        with chat_server() as url:
            yield url, url.replace("ws://", "http://")
    else:
        raise AssertionError(f"README command for protocol {protocol!r} with no server to run it against")


def run_headless(original: str, text: str, workspace: Workspace) -> None:
    folder = workspace.folder
    baseline = re.search(r"--capacity-baseline (\S+)", text)
    if baseline and not (folder / baseline.group(1)).exists():  # "last release's" result: an earlier run's
        (folder / baseline.group(1)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / "reports" / "capacity.json", folder / baseline.group(1))
    report = folder / "reports"
    (report / "checks.json").unlink(missing_ok=True)
    started = time.monotonic()
    result = run_shell(text, folder, workspace.env)
    output = result.stdout + result.stderr
    assert result.returncode in expected_codes(original), f"{original}\n-> {result.returncode}\n{output[-4000:]}"
    assert "Traceback" not in output, output[-4000:]
    assert "Socketproof checks" in result.stdout, output[-3000:]
    assert (report / "checks.json").exists() and (report / "checks-junit.xml").exists()
    if "--html" in text:
        html = folder / re.search(r"--html (\S+)", text).group(1)
        assert "<h2>Socketproof checks</h2>" in html.read_text()
    if "--capacity" in text:
        folder_of = re.search(r"--capacity-report (\S+)", text)
        assert (folder / (folder_of.group(1) if folder_of else "reports") / "capacity.json").exists(), output[-3000:]
    assert time.monotonic() - started < RUN_TIMEOUT


def run_distributed(master: str, worker: str, workspace: Workspace) -> None:
    port = free_port()
    env = workspace.env
    workers = [
        subprocess.Popen(["bash", "-c", f"exec {worker} --master-port {port}"], cwd=workspace.folder, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        for _ in range(2)
    ]
    try:
        result = run_shell(f"{master} --master-bind-port {port}", workspace.folder, env)
    finally:
        codes = [stop_group(process, grace=20) for process in workers]
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Socketproof checks" in result.stdout
    checks = (workspace.folder / "reports" / "checks.json").read_text()
    assert '"w0"' in checks and '"w1"' in checks, "both workers' histories reached the master"
    assert all(code is not None for code in codes)
    assert os.path.exists(workspace.folder / "reports" / "checks-junit.xml")
