"""Every Socketproof option on Locust's parser, in one place, and the run's adapter built from them.

Each part declares its own options (the run's in socketproof.run.options, the target's in
socketproof.target.deployment, capacity's in socketproof.capacity.options, each adapter's in its
module's OPTIONS); this module is the one that registers them all, so none imports another back.
"""

from __future__ import annotations

from typing import Any

from checks import CHECKS
from client.adapters import AdapterError, AdapterSettings, build_adapter, builtin_options
from socketproof.capacity.options import add_capacity_arguments
from socketproof.run.options import SECRET_OPTIONS, LoadOptions, OptionError, add_run_arguments
from socketproof.target.deployment import add_deployment_arguments


def add_arguments(parser: Any) -> None:
    """Register every option (events.init_command_line_parser). Locust's own add_argument, with
    its web UI flags, lives on the parser, not on argument groups."""
    add_run_arguments(parser, checks_help())
    add_capacity_arguments(parser)
    add_adapter_arguments(parser)
    add_deployment_arguments(parser)


def checks_help() -> str:
    """--checks' list of names, each with what it judges, from the check registry."""
    return "; ".join(f"{c.name} ({c.help})" for c in CHECKS.values()).replace("%", "%%")


def add_adapter_arguments(group: Any) -> None:
    """Every built-in adapter's own options (e.g. --socketio-event), used by the one --protocol picks."""
    for option in builtin_options():
        variable = SECRET_OPTIONS.get(option.dest)
        note = f" (or ${variable}; a secret: never shown in the page, logs or reports)" if variable else ""
        group.add_argument(option.flag, default=option.default, type=option.type, help=option.help + note,
                           is_secret=variable is not None)


def build_run_adapter(parsed: Any, options: LoadOptions) -> Any:
    """The run's adapter from --protocol and the adapters' options (OptionError names --protocol)."""
    values = {o.dest: getattr(parsed, o.dest, o.default) for o in builtin_options()} if parsed is not None else {}
    if options.ws_path:
        values["ws_path"] = options.ws_path
    try:
        adapter = build_adapter(options.protocol, AdapterSettings(values, options.message_bytes))
    except AdapterError as error:
        raise OptionError(str(error)) from None
    if options.ws_path:
        adapter.default_path = options.ws_path
    return adapter
