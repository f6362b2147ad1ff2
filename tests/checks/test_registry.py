"""The check registry: every check module registers itself, and what reads the registry
(ALL_CHECKS, folding, --checks) sees each check without being told its name."""
import importlib
import pkgutil

import pytest

import checks
from checks.fold import fold
from checks.registry import CHECKS, Check, history_checks, register
from checks.verdict import Anomaly, verdict
from history import ConnectionHistory, Folded, History


@pytest.fixture
def registry():
    """The registry as it was, restored after the test."""
    saved = dict(CHECKS)
    yield CHECKS
    CHECKS.clear()
    CHECKS.update(saved)


def test_every_check_module_is_registered_in_its_order():
    modules = [importlib.import_module(f"checks.{m.name}") for m in pkgutil.iter_modules(checks.__path__)]
    with_a_check = {m.NAME: m.__name__ for m in modules if hasattr(m, "NAME")}
    assert {name: c.check.__module__ for name, c in CHECKS.items()} == with_a_check
    assert list(CHECKS) == ["ordering", "duplicates", "loss", "agreement", "cleanup", "heartbeat", "state",
                            "recovery", "timing"]
    assert all(c.help and "%" not in c.help for c in CHECKS.values())


def test_all_checks_are_the_history_checks():
    assert list(checks.ALL_CHECKS) == list(history_checks()) == [n for n in CHECKS if n != "timing"]
    assert all(checks.ALL_CHECKS[n] is c.check for n, c in history_checks().items())


def _check(history: History):
    return verdict("extra", [], {}, known=True)


def _anomalies(c: ConnectionHistory) -> list[Anomaly]:
    return [Anomaly("extra_kind", f"{c.label} is extra", {"label": c.label})]


def _fold(into: Folded, c: ConnectionHistory) -> None:
    into.add_ping_means([42.0])


def test_fold_asks_every_registered_check(registry):
    register(Check(name="extra", check=_check, help="a test check", order=15,
                   connection_anomalies=_anomalies, fold=_fold))
    assert list(registry)[:3] == ["ordering", "extra", "duplicates"]
    into = Folded()
    fold(into, ConnectionHistory("c1", "u", closed_at=1.0))
    assert into.findings["extra_kind"].items == [{"message": "c1 is extra", "label": "c1"}]
    assert into.ping_means == [42.0] and into.connections == 1


def test_a_name_belongs_to_one_module(registry):
    register(Check(name="extra", check=_check, help="a test check", order=15))
    register(Check(name="extra", check=_check, help="imported again", order=15))  # the same module: replaced
    assert registry["extra"].help == "imported again"
    with pytest.raises(ValueError, match="registered by both"):
        register(Check(name="loss", check=_check, help="another loss", order=30))
