"""The layout's rules, checked on the source: no import circle, no cross-module private import,
no module far over 500 lines.

Every import counts, a function-level one included: a circle hidden behind a
lazy import is still a circle a reader has to untangle. The graph is read
with ``ast`` (nothing is imported), so the test also holds for modules whose
import would be slow or have side effects.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sweep"
MAX_LINES = 550  # "about 500": a module a reader takes in at one sitting


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, known: set[str]) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every import of a sweep module.

    A module that calls ``importlib.import_module`` (or ``__import__``) imports every
    sweep module a string literal in it names: a registry of dotted strings is still
    an edge. A module bound by ``from sweep.x import y`` and read as ``y._z`` imports
    the private name ``_z``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = []
    dynamic = any(isinstance(n, ast.Call) and (getattr(n.func, "attr", None) or getattr(n.func, "id", None))
                  in ("import_module", "__import__") for n in ast.walk(tree))
    if dynamic:
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                name = n.value.strip().split(":")[0]
                if name in known and name != module:
                    out.append((name, None, n.lineno))
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, path.name == "__init__.py")
            for a in node.names:
                if f"{target}.{a.name}" in known:
                    bound[a.asname or a.name] = f"{target}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound \
                and node.attr.startswith("_") and not node.attr.startswith("__"):
            out.append((bound[node.value.id], node.attr, node.lineno))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "sweep"]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, path.name == "__init__.py")
            if target.split(".")[0] != "sweep":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                # ``from sweep.study import optuna`` imports a module, not a name.
                out.append((sub, None, node.lineno) if sub in known else (target, a.name, node.lineno))
    return out


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    mods = _modules()
    known = set(mods)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    private: list[str] = []
    for m, path in mods.items():
        for target, name, line in _imports(m, path, known):
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target not in known or target == m:
                continue
            graph[m].add(target)
            if name and name.startswith("_") and not name.startswith("__"):
                private.append(f"{path.relative_to(PACKAGE.parent)}:{line}: from {target} import {name}")
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _parents_ok(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package's __init__ that re-exports its own submodules is not a circle with them:
    # importing ``sweep.x.y`` runs ``sweep.x`` first by construction. Drop edges from a
    # submodule to a package that contains it.
    return {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}


def test_no_import_circle():
    graph, _ = _graph()
    assert _cycles(_parents_ok(graph)) == []


def test_no_module_imports_another_modules_private_name():
    _, private = _graph()
    assert private == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_short(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)} has {n} lines"


def test_the_checker_finds_a_planted_circle_and_private_import(tmp_path, monkeypatch):
    """The rules above would be hollow if the checker could not see a violation."""
    pkg = tmp_path / "sweep"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("def f():\n    from sweep.a.y import _hidden\n")
    (pkg / "a" / "y.py").write_text("from .x import f\n_hidden = 1\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    graph, private = _graph()
    assert _cycles(_parents_ok(graph)) == [["sweep.a.x", "sweep.a.y"]]
    assert private == ["sweep/a/x.py:2: from sweep.a.y import _hidden"]
