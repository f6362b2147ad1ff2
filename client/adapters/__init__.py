"""Adapters, one per wire protocol (client/adapter.py is the seam they implement).

`--protocol NAME` picks a built-in one; `--protocol path/to/file.py:ClassName` loads a
user's own. Each built-in module declares `ADAPTER` (the class) and `OPTIONS` (its own
command-line options, registered by the Locust plugin for every adapter so `--help` and
the web UI list them); the class is built with `ADAPTER(settings)`, where `settings` maps
each option's `dest` to its value (plus the common ones in `AdapterSettings`).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from typing import Any

from client.adapter import Adapter, as_adapter_class

BUILTIN: dict[str, str] = {
    "socketproof": "client.adapters.socketproof",
    "socketio": "client.adapters.socketio",
    "graphql-ws": "client.adapters.graphql_ws",
    "stomp": "client.adapters.stomp",
    "mqtt": "client.adapters.mqtt",
}
"""--protocol name -> module. A module that is not there yet is simply not offered."""


@dataclasses.dataclass(frozen=True)
class AdapterOption:
    """One adapter-specific command-line option (e.g. --socketio-event)."""

    flag: str
    default: Any
    help: str
    type: type = str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclasses.dataclass(frozen=True)
class AdapterSettings:
    """What every adapter is built with: its own options' values by `dest`, and the run's
    message size. Tokens are per identity and come in SessionContext, not here."""

    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    message_bytes: int = 64

    def get(self, dest: str, default: Any = None) -> Any:
        value = self.values.get(dest)
        return default if value in (None, "") else value


class AdapterError(ValueError):
    """--protocol names no usable adapter (one line for the user, exit 2)."""


def available() -> dict[str, Any]:
    """Built-in adapter modules that import, by name."""
    found = {}
    for name, module in BUILTIN.items():
        try:
            found[name] = importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name and module.startswith(error.name):
                continue  # not written yet
            raise
    return found


def builtin_options() -> list[AdapterOption]:
    """Every built-in adapter's own options (registered for all, used by the chosen one)."""
    return [option for module in available().values() for option in getattr(module, "OPTIONS", [])]


def load_adapter_class(spec: str) -> type[Adapter]:
    """The class for `--protocol spec`: a built-in name or `path/to/file.py:ClassName`. A class
    that does not inherit `Adapter` (written from the older docs) is given it as a second base."""
    spec = spec.strip()
    modules = available()
    if spec in modules:
        return modules[spec].ADAPTER
    if ":" not in spec:
        raise AdapterError(f"--protocol {spec!r} is not an adapter: use one of {', '.join(sorted(modules))} "
                           "or path/to/file.py:ClassName")
    path, _, class_name = spec.rpartition(":")
    if not path.endswith(".py") or not os.path.isfile(path):
        raise AdapterError(f"--protocol {spec!r}: no Python file at {path!r}")
    module_name = "socketproof_user_adapter_" + os.path.basename(path)[:-3].replace("-", "_")
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise AdapterError(f"--protocol {spec!r}: cannot load {path!r}")
    module = importlib.util.module_from_spec(loader_spec)
    try:
        loader_spec.loader.exec_module(module)
    except Exception as error:  # a user's file: say what broke, in one line
        raise AdapterError(f"--protocol {spec!r}: {path} failed to import: {type(error).__name__}: {error}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise AdapterError(f"--protocol {spec!r}: {path} has no class {class_name!r}")
    missing = [attr for attr in ("name", "capabilities") if not hasattr(cls, attr)]
    if getattr(cls, "session", Adapter.session) is Adapter.session:
        missing.append("session")
    if missing:
        raise AdapterError(f"--protocol {spec!r}: {class_name} is not an adapter (missing {', '.join(missing)}; "
                           "see docs/adapters.md)")
    return as_adapter_class(cls)  # one written before the Adapter base gets it (docs/adapters.md)


def build_adapter(spec: str, settings: AdapterSettings) -> Adapter:
    """Load and build the adapter `--protocol spec` names."""
    cls = load_adapter_class(spec)
    try:
        return cls(settings)
    except (TypeError, ValueError) as error:
        raise AdapterError(f"--protocol {spec!r}: {error}") from None
