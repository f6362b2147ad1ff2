"""`python -m socketproof.proxy --listen 127.0.0.1:0 --upstream ws://host:port [--faults SPEC]`.

Prints `proxy listening on ws://127.0.0.1:PORT -> ws://host:port (faults: ...)` once it
listens, relays until SIGINT/SIGTERM or --duration, then prints one line of fault counts
(and writes them as JSON with --counts-file). A bad option is one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from socketproof.proxy.control import CUT_SIGNAL, PAUSE_SIGNAL, READY_MARK, ProxyError, parse_listen, parse_upstream
from socketproof.proxy.faults import FAULTS, FaultSpecError, parse_spec
from socketproof.proxy.limits import MAX_MESSAGE_BYTES, QUEUE_BYTES, WRITE_TIMEOUT, LimitError, Limits


def epilog() -> str:
    """The spec's syntax and every registered fault's usage line, for --help."""
    lines = [
        "fault spec: a comma list of [up:|down:]NAME[=VALUE][@PROBABILITY]; down = server->client,",
        "up = client->server, both by default; @PROBABILITY for the faults whose value is not one.",
        "",
        "faults:",
    ]
    for fault in FAULTS.known():
        summary = (fault.__doc__ or "").strip().splitlines()[0]
        lines += [f"  {fault.usage}", f"      {summary}"]
    lines += ["", "example: drop=0.2,duplicate=0.1,down:reorder=0.2,delay_ms=50+20,freeze_pings"]
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        fail(message)


def fail(message: str) -> None:
    sys.stderr.write(f"socketproof.proxy: error: {message}\n")
    sys.stderr.flush()
    sys.exit(2)


def parser() -> argparse.ArgumentParser:
    parse = _Parser(
        prog="python -m socketproof.proxy",
        description="A WebSocket-aware fault proxy: relays frames to --upstream, injecting the faults of --faults.",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parse.add_argument("--listen", default="127.0.0.1:0", help="loopback HOST:PORT to listen on (default 127.0.0.1:0)")
    parse.add_argument("--upstream", required=True, help="the server, ws://host:port (clients keep their path)")
    parse.add_argument("--faults", default="", help="fault spec (default none: an exact relay)")
    parse.add_argument("--seed", type=int, default=None, help="seed for the faults' random choices (default random)")
    parse.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: at SIGINT/SIGTERM)"
    )
    parse.add_argument("--max-message-bytes", type=int, default=MAX_MESSAGE_BYTES,
                       help="close both sides with 1009 past this many bytes in one message, after inflating "
                            f"(default {MAX_MESSAGE_BYTES}, the client's cap)")
    parse.add_argument("--queue-bytes", type=int, default=QUEUE_BYTES,
                       help=f"data bytes queued per direction before reading waits (default {QUEUE_BYTES})")
    parse.add_argument("--write-timeout", type=float, default=WRITE_TIMEOUT,
                       help="close both sides when a peer takes no bytes for this many seconds "
                            f"(default {WRITE_TIMEOUT:g})")
    parse.add_argument("--counts-file", default="", help="also write the final counts as JSON here")
    parse.add_argument("--verbose", action="store_true", help="log every connection's end")
    return parse


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        listen = parse_listen(args.listen)
        upstream = parse_upstream(args.upstream)
        spec = parse_spec(args.faults)
        limits = Limits(args.max_message_bytes, args.queue_bytes, args.write_timeout)
    except (ProxyError, FaultSpecError, LimitError) as error:
        fail(str(error))
        return 2
    if args.duration is not None and not 0 < args.duration <= 7 * 24 * 3600:
        fail(f"--duration must be between 0 and 604800 seconds, got {args.duration:g}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(name)s: %(message)s",
                        stream=sys.stderr)
    import gevent
    import gevent.event

    from socketproof.proxy.relay import RelayServer, format_counts

    server = RelayServer(upstream, spec, args.seed, listen, limits)
    try:
        url = server.start()
    except OSError as error:
        fail(f"cannot listen on {args.listen}: {error.strerror or error}")
        return 2
    stop = gevent.event.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stop.set)
    gevent.signal_handler(CUT_SIGNAL, server.cut_all)  # the run's control (locust --disrupt)
    gevent.signal_handler(PAUSE_SIGNAL, lambda: server.pause(not server.flowing.is_set()))
    print(f"{READY_MARK}{url} -> {args.upstream.rstrip('/')} (faults: {spec.describe()})", flush=True)
    stop.wait(args.duration)
    server.stop()
    counts = server.counts()
    print(format_counts(counts), flush=True)
    if args.counts_file:
        Path(args.counts_file).write_text(json.dumps(counts, indent=2) + "\n")
    return 0
