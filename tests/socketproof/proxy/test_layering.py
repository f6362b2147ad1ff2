"""The proxy runs in front of any server: it imports nothing of the reference server (server/).

What both need (the child-process launcher, the value checks) is in common/, which imports
nothing of the project.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROJECT = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()}


def imported(folder: Path) -> list[tuple[str, str]]:
    """(file, top-level package) of every absolute import under `folder`, function-level ones included."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(path.name, alias.name.split(".")[0]) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.append((path.name, node.module.split(".")[0]))
    return found


def test_the_proxy_imports_nothing_of_the_reference_server() -> None:
    wrong = [f"{name} imports server" for name, package in imported(ROOT / "socketproof" / "proxy")
             if package == "server"]
    assert not wrong, "\n".join(wrong)


def test_common_imports_nothing_of_the_project() -> None:
    wrong = [f"{name} imports {package}" for name, package in imported(ROOT / "common")
             if package in PROJECT - {"common"}]
    assert not wrong, "\n".join(wrong)
