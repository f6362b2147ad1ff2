"""registry.py and discovery: each module of the faults package is one registered fault, found by itself.

A new fault is one file: these tests hold every registered fault to the conventions (its
module is named after it, it has a usage line, its class docstring starts with a summary
for --help, and the README's fault proxy section names it).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import socketproof.proxy.faults as faults_package
from socketproof.proxy.faults import FAULTS, Fault, register
from socketproof.proxy.faults.registry import Registry

ROOT = Path(__file__).resolve().parents[4]
INFRASTRUCTURE = {"base", "connection", "registry", "spec"}
"""The package's modules that are not a fault."""


def fault_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(faults_package.__path__) if m.name not in INFRASTRUCTURE)


def test_every_module_of_the_package_is_one_registered_fault_of_its_name() -> None:
    assert sorted(FAULTS.names()) == fault_modules()
    for name in fault_modules():
        module = importlib.import_module(f"socketproof.proxy.faults.{name}")
        mine = [cls for cls in vars(module).values()
                if isinstance(cls, type) and issubclass(cls, Fault) and cls.__module__ == module.__name__]
        assert [cls.name for cls in mine] == [name], f"{name}.py must define the one fault {name!r}"
        assert FAULTS.get(name) is mine[0]


def test_the_listing_order_keeps_the_message_faults_first_in_the_order_they_apply() -> None:
    first = ("drop", "corrupt", "duplicate", "reorder", "delay_ms",
             "cut_after", "half_open", "freeze_pings", "throttle")
    assert tuple(name for name in FAULTS.names() if name in first) == first


@pytest.mark.parametrize("fault", FAULTS.known(), ids=lambda fault: fault.name)
def test_every_fault_has_a_usage_a_summary_and_a_readme_line(fault: type[Fault]) -> None:
    assert fault.usage.startswith(fault.name)
    assert (fault.__doc__ or "").strip(), f"{fault.__name__} needs a docstring (its first line is its --help summary)"
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Prove the checks on your own server", 1)[1].split("\n## ", 1)[0]
    assert re.search(rf"`(up:|down:)?{fault.name}\b", section), f"README.md's fault proxy section lacks {fault.name}"


def test_register_refuses_a_nameless_fault_and_a_second_fault_of_a_name() -> None:
    registry = Registry()

    class Nameless(Fault):
        usage = "nameless"

    with pytest.raises(TypeError, match="needs a name"):
        registry.register(Nameless)

    class Drop(Fault):
        name = "drop"
        usage = "drop=P"

    registry.register(Drop)
    registry.register(Drop)  # the same class again (a module imported twice) is fine
    with pytest.raises(TypeError, match="two faults named 'drop'"):
        register(Drop)  # the proxy's registry has its own drop


def test_known_is_ordered_by_order_then_name() -> None:
    registry = Registry()
    classes = [type(name, (Fault,), {"name": name, "usage": name, "order": order})
               for name, order in (("b", 2), ("a", 2), ("c", 1))]
    for cls in classes:
        registry.register(cls)
    assert registry.names() == ("c", "a", "b") and registry.get("a") is classes[1] and registry.get("z") is None
