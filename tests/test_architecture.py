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


def _module_name(path: Path) -> str:
    """``uand`` for ``uand.py``, ``export.core`` for ``export/core.py``, ``export`` for its ``__init__``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _resolve(mod: str, is_package: bool, level: int, module: str | None) -> str:
    """The module a relative import ``from {'.' * level}{module} import …`` in ``mod`` names."""
    base = mod.split(".") if mod != "__init__" else []
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    target = ".".join([*base, *([module] if module else [])])
    return target or "__init__"


def _imports() -> dict[str, list[tuple[str, str, int]]]:
    """``{module: [(imported module, imported name or "", line), ...]}`` over the package.

    Modules of subpackages are named with dots (``export.core``); a package is its ``__init__``
    (``export``), the root package ``__init__``.
    """
    modules = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    out: dict[str, list[tuple[str, str, int]]] = {}
    for mod, path in modules.items():
        is_package = path.name == "__init__.py"
        found = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                src = _resolve(mod, is_package, node.level, node.module)
                if node.module is None:  # from . import x: a module, or a name of the package
                    for a in node.names:
                        sub = f"{src}.{a.name}" if src != "__init__" else a.name
                        if sub in modules:
                            found.append((sub, "", node.lineno))
                        else:
                            found.append((src, a.name, node.lineno))
                else:
                    found += [(src, a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "superposition"
            ):
                sub = (node.module or "").partition(".")[2] or "__init__"
                found += [(sub, a.name, node.lineno) for a in node.names]
        out[mod] = found
    return out


def test_the_walk_sees_subpackages() -> None:
    """The export package's modules are walked, and their relative imports resolved."""
    found = _imports()
    assert {"export", "export.core", "export.uand", "export.deep"} <= set(found)
    sources = {src for src, _, _ in found["export.deep"]}
    assert {"export.core", "export.circuit", "deep", "correction"} <= sources
    assert "export.core" in {src for src, _, _ in found["export"]}


def test_no_module_imports_another_modules_private_name() -> None:
    bad = [
        f"{mod}.py:{line} imports {name} from {src}"
        for mod, found in _imports().items()
        for src, name, line in found
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not bad, "\n".join(bad)


def _with_parents(mod: str, src: str) -> set[str]:
    """``src`` and the packages importing it runs first (``export`` for ``export.core``), but
    not the packages ``mod`` itself is in (a package's modules import while it is running)."""
    parts = src.split(".")
    out = {src}
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        if mod != parent and not mod.startswith(parent + "."):
            out.add(parent)
    return out


def test_the_import_graph_has_no_cycle() -> None:
    graph = {
        mod: sorted(
            {
                dep
                for src, _, _ in found
                if src != "__init__"
                for dep in _with_parents(mod, src)
                if dep != mod
            }
        )
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


def test_no_docstring_math_loses_a_command_to_a_python_escape() -> None:
    r"""A string with math that is not raw turns ``\top``, ``\times``, ``\frac``, ``\binom``,
    ``\nu`` … into a tab, form feed, backspace or newline followed by letters: the rendered API
    shows the command broken. Every such string in the library must be raw."""
    import io
    import re
    import tokenize

    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            prefix = re.match(r"[A-Za-z]*", tok.string).group(0).lower()  # type: ignore[union-attr]
            if tok.type != tokenize.STRING or "r" in prefix:
                continue
            if ":math:" not in tok.string and "$" not in tok.string:
                continue
            if re.search(r"(?<!\\)\\[tfbarvn][a-zA-Z]", tok.string):
                bad.append(f"{path.name}:{tok.start[0]}")
    assert not bad, f"strings with math that are not raw: {bad}"
