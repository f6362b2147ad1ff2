"""Dependencies run one way: no import cycle between the project's modules (function-level
imports included), no production code importing tests/, and the layers the style guide
names (history <- checkers <- fold <- the run; options import nothing of the project).

A static scan of every `import` in the source (the bodies of `if TYPE_CHECKING:` excepted,
as they never run); an import of a package's module is an edge to that module only.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "server", "client", "checks", "history", "socketproof", "locustfiles", "apps", "bench", "tests")
"""Scanned; every package but tests is production code."""
ONLY = {
    "common": set(),
    "history": set(),
    "checks": {"history"},
    "socketproof.run.options": set(),
}
"""Module or package -> the only project packages it may import besides itself."""
NEVER = {
    "client": {"checks", "socketproof", "server"},
    "socketproof.proxy": {"server"},
}
"""Module or package -> project packages it must not import (the run hands the client what it needs)."""


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[tuple[str, int, list[str], int]]:
    """(module, level, imported names, line) of every import, skipping `if TYPE_CHECKING:` bodies."""
    out: list[tuple[str, int, list[str], int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, 0, [], node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level, [a.name for a in node.names], node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def graph() -> dict[str, dict[str, int]]:
    """Module -> {imported project module: line}."""
    mods = modules()
    edges: dict[str, dict[str, int]] = defaultdict(dict)
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for module, level, names, line in _imports(ast.parse(path.read_text(), str(path))):
            if level:
                base = package.split(".")[: len(package.split(".")) - (level - 1)]
                module = ".".join([*base, module] if module else base)
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in mods]
            if not targets and module in mods:
                targets = [module]
            for target in targets:
                if target != name:
                    edges[name].setdefault(target, line)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_scan_sees_function_level_imports_and_skips_type_checking():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n"
                     "def f():\n    from c import d\n")
    assert [m for m, *_ in _imports(tree)] == ["typing", "b", "c"]
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycles():
    edges = graph()
    described = []
    for component in cycles(edges):
        inside = [f"{a} -> {b} (line {line})" for a in component for b, line in sorted(edges[a].items())
                  if b in component]
        described.append(f"{component}:\n    " + "\n    ".join(inside))
    assert not described, "import cycles:\n" + "\n".join(described)


def test_production_code_does_not_import_tests():
    wrong = [f"{a} -> {b} (line {line})" for a, targets in graph().items() if not _within(a, "tests")
             for b, line in targets.items() if _within(b, "tests")]
    assert not wrong, "production code importing tests/:\n" + "\n".join(wrong)


def test_dependencies_run_one_way():
    wrong = []
    for a, targets in graph().items():
        for b, line in targets.items():
            wrong += [f"{a} imports {b} (line {line}): {layer} imports only {sorted(ok) or 'itself'}"
                      for layer, ok in ONLY.items()
                      if _within(a, layer) and not any(_within(b, x) for x in {layer, *ok})]
            wrong += [f"{a} imports {b} (line {line}): {layer} imports nothing of {sorted(no)}"
                      for layer, no in NEVER.items() if _within(a, layer) and any(_within(b, x) for x in no)]
    assert not wrong, "\n".join(wrong)
