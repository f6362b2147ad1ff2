"""The faults a spec may name: each fault module registers its class here (`@register`).

The package imports every module in it (faults/__init__.py), so a new fault is one new file:

    @register
    class Drop(ChanceFault):
        name = "drop"
        ...
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from socketproof.proxy.faults.base import Fault


class Registry:
    """Fault classes by name."""

    def __init__(self) -> None:
        self._faults: dict[str, type[Fault]] = {}

    def register(self, cls: type[Fault]) -> type[Fault]:
        """Class decorator: `cls` becomes the fault named `cls.name` (which must be new, with a usage)."""
        if not cls.name.isidentifier() or not cls.usage:
            raise TypeError(f"{cls.__qualname__}: a fault needs a name (an identifier) and a usage line")
        taken = self._faults.get(cls.name)
        if taken is not None and (taken.__module__, taken.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"two faults named {cls.name!r}: {taken.__module__} and {cls.__module__}")
        self._faults[cls.name] = cls
        return cls

    def get(self, name: str) -> type[Fault] | None:
        return self._faults.get(name)

    def known(self) -> tuple[type[Fault], ...]:
        """Every fault, in its listing order."""
        return tuple(sorted(self._faults.values(), key=lambda cls: (cls.order, cls.name)))

    def names(self) -> tuple[str, ...]:
        return tuple(cls.name for cls in self.known())


FAULTS = Registry()
"""The proxy's faults."""

register = FAULTS.register


def import_all(package: str, path: Iterable[str]) -> None:
    """Import every module of `package` (its fault modules register themselves)."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
