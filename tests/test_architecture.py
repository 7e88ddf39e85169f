"""The library's shape: layers without cycles, and no module reaching into another's private names.

The modules import each other only downwards (backend → embedding → constructions → measurements
→ sweep and export → command line); every import between them, deferred ones inside functions
included, is read from the source, so a cycle hidden by a deferred import fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "superposition"


def _imports() -> dict[str, list[tuple[str, str, int]]]:
    """``{module: [(imported module, imported name or "", line), ...]}`` over the package."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        mod = path.stem
        found = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module is None:  # from . import x: a module, or a name of the root
                    for a in node.names:
                        if (PACKAGE / f"{a.name}.py").exists():
                            found.append((a.name, "", node.lineno))
                        else:
                            found.append(("__init__", a.name, node.lineno))
                else:
                    found += [(node.module, a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "superposition"
            ):
                sub = (node.module or "").partition(".")[2] or "__init__"
                found += [(sub, a.name, node.lineno) for a in node.names]
        out[mod] = found
    return out


def test_no_module_imports_another_modules_private_name() -> None:
    bad = [
        f"{mod}.py:{line} imports {name} from {src}"
        for mod, found in _imports().items()
        for src, name, line in found
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not bad, "\n".join(bad)


def test_the_import_graph_has_no_cycle() -> None:
    graph = {
        mod: sorted({src for src, _, _ in found if src != mod and src != "__init__"})
        for mod, found in _imports().items()
        if mod != "__init__"
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        path.append(mod)
        for nxt in graph.get(mod, []):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod)


def test_only_the_package_and_cli_import_the_package_root() -> None:
    """A module that imports ``superposition`` itself would import every other module."""
    bad = [
        f"{mod}.py:{line}"
        for mod, found in _imports().items()
        for src, _, line in found
        if src == "__init__" and mod != "__init__"
    ]
    assert not bad, bad
