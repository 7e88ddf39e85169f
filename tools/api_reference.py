"""Sphinx extension: the API reference page, generated from ``superposition.__all__`` at build time.

The directive ``superposition-api`` writes, for each module of the library (in the order of
``MODULE_ORDER``, then any other module alphabetically), a section titled by the module's
docstring, an autosummary table of the public names defined there and their autodoc entries,
documented under their public path ``superposition.NAME``. Renaming or adding a public name
changes the page with no edit to it. The public modules none of whose names are re-exported
(``superposition.kernels``, ``superposition.memory``, …) follow, each as its own section.

Cross-references in the docstrings often name an object by the module that defines it
(``superposition.theory.paper_p``) or relative to it (``TILE_BYTES`` in ``superposition.uand``);
the ``missing-reference`` handler resolves those to the documented ``superposition.paper_p``, or
to the documented module-level constant.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from types import ModuleType
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

PACKAGE = "superposition"
MODULE_ORDER = (
    "embedding",
    "uand",
    "superposed",
    "theory",
    "circuits",
    "collisions",
    "correction",
    "grouped",
    "deep",
    "training",
    "export",
    "search",
    "fit",
    "sweep",
    "store",
    "executors",
    "experiments",
    "backend",
    "kernels",
    "errors",
    "vocabulary",
)
EXCLUDED = ("cli",)  # the command line has its own --help


def _submodules(package: ModuleType) -> dict[str, ModuleType]:
    out = {}
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name not in EXCLUDED:
            out[info.name] = importlib.import_module(f"{package.__name__}.{info.name}")
    return out


def _home(name: str, obj: Any, modules: dict[str, ModuleType]) -> str:
    """The submodule that defines ``obj`` (for data: the first public module holding it)."""
    mod = getattr(obj, "__module__", None)
    if isinstance(mod, str) and mod.startswith(PACKAGE + "."):
        short = mod.split(".")[1]
        if short in modules:
            return short
    for short, module in modules.items():
        if vars(module).get(name) is obj:
            return short
    return "other"


def public_api() -> list[tuple[str, str, list[str]]]:
    """``[(module, title, names)]`` for every module holding names of ``superposition.__all__``."""
    package = importlib.import_module(PACKAGE)
    modules = _submodules(package)
    groups: dict[str, list[str]] = {}
    for name in package.__all__:
        groups.setdefault(_home(name, getattr(package, name), modules), []).append(name)
    order = [m for m in MODULE_ORDER if m in groups]
    order += sorted(m for m in groups if m not in MODULE_ORDER)
    out = []
    for short in order:
        module = modules.get(short)
        doc = inspect.getdoc(module) if module is not None else None
        title = (doc or short).strip().splitlines()[0].rstrip(".")
        out.append((short, title, groups[short]))
    return out


def defined_names(module: ModuleType) -> list[str]:
    """Public classes, functions and UPPER_CASE constants defined at the top of ``module``.

    For a package (``superposition.export``): the names of its ``__all__``, defined in its modules.
    """
    if hasattr(module, "__path__"):
        return [n for n in getattr(module, "__all__", []) if not n.startswith("_")]
    tree = ast.parse(inspect.getsource(module))
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
    return [n for n in names if not n.startswith("_")]


def _entry(path: str, obj: Any) -> list[str]:
    if inspect.isclass(obj):
        return [f".. autoclass:: {path}", "   :members:", ""]
    if callable(obj):
        return [f".. autofunction:: {path}", ""]
    return [f".. autodata:: {path}", "   :no-value:", ""]


def _summary(paths: list[str], objects: list[Any], current: str = "") -> list[str]:
    """An autosummary table and the autodoc entries; in the table, a path inside the current
    module ``current`` is written relative to it (as autosummary asks)."""
    inside = current + "."
    shown = [p[len(inside) :] if current and p.startswith(inside) else p for p in paths]
    lines = [".. autosummary::", "   :nosignatures:", ""]
    lines += [f"   {p}" for p in shown] + [""]
    for p, obj in zip(paths, objects, strict=True):
        lines += _entry(p, obj)
    return lines


def _data_path(module: ModuleType, name: str) -> str:
    """Where a constant of ``module`` is documented: for a package, the module of it that
    defines it (autodoc finds a constant's docstring in its defining source only)."""
    if not hasattr(module, "__path__"):
        return name
    for info in pkgutil.iter_modules(module.__path__):
        sub = importlib.import_module(f"{module.__name__}.{info.name}")
        if not info.name.startswith("_") and name in defined_names(sub):
            return f"{sub.__name__}.{name}"
    return name


def _module_section(short: str, names: list[str]) -> list[str]:
    """One module: its re-exported names (as ``superposition.NAME``; data under the module,
    where its docstring lives), then its other public names (as ``superposition.MODULE.NAME``)."""
    package = importlib.import_module(PACKAGE)
    module = importlib.import_module(f"{PACKAGE}.{short}")
    title = (inspect.getdoc(module) or short).strip().splitlines()[0].rstrip(".")
    lines = [title, "-" * max(len(title), 3), ""]
    # the section's current module: names relative to it (the "Also in" part) resolve here
    lines += [f".. py:module:: {PACKAGE}.{short}", ""]
    paths, objects = [], []
    for n in names:
        obj = getattr(package, n)
        data = not (inspect.isclass(obj) or callable(obj))
        paths.append(n if data else f"{PACKAGE}.{n}")
        objects.append(obj)
    if paths:
        lines += [f"Defined in ``{PACKAGE}.{short}``, exported as ``{PACKAGE}.NAME``.", ""]
        lines += _summary(paths, objects)
    others = [n for n in defined_names(module) if n not in names and hasattr(module, n)]
    if others:
        objs = [getattr(module, n) for n in others]
        paths = [
            n if inspect.isclass(o) or callable(o) else _data_path(module, n)
            for n, o in zip(others, objs, strict=True)
        ]
        lines += [f".. rubric:: Also in ``{PACKAGE}.{short}``", ""]
        lines += _summary(paths, objs, f"{PACKAGE}.{short}")
    return lines


class ApiDirective(SphinxDirective):
    """``.. superposition-api::`` — the whole reference, generated (see the module docstring)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        lines: list[str] = []
        for short, _title, names in public_api():
            if short == "other":
                raise self.error(f"names of {PACKAGE}.__all__ defined in no module: {names}")
            lines += _module_section(short, names)
        # the public modules none of whose names are re-exported (kernels, memory, …)
        covered = {short for short, _, _ in public_api()}
        package = importlib.import_module(PACKAGE)
        for short in sorted(set(_submodules(package)) - covered):
            lines += _module_section(short, [])
        node = nodes.section()
        node.document = self.state.document
        content = StringList(lines, source=f"<{PACKAGE}.__all__>")
        nested_parse_with_titles(self.state, content, node)
        return node.children


def _resolve(app: Any, env: Any, node: Any, contnode: nodes.Node) -> nodes.Node | None:
    """Resolve a Python reference the library's docstrings write relative to a defining module.

    ``superposition.theory.paper_p`` is documented as ``superposition.paper_p``, and a bare
    name (``build_uand``) as ``superposition.build_uand``; anything else stays unresolved (and
    the nitpicky build reports it).
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    parts = target.split(".")
    candidates = []
    if target.startswith(PACKAGE + ".") and len(parts) >= 3:
        candidates.append(".".join([PACKAGE, *parts[2:]]))
    if not target.startswith(PACKAGE):
        candidates.append(f"{PACKAGE}.{target}")
    domain = env.get_domain("py")
    for cand in candidates:
        if cand in domain.objects:
            found = domain.resolve_any_xref(env, node["refdoc"], app.builder, cand, node, contnode)
            if found:
                return found[0][1]
    # a name relative to the module that defines it: the one documented object it ends, or
    # where several modules define it, the one whose source file holds the docstring
    suffix = "." + target
    matches = [name for name in domain.objects if name.endswith(suffix)]
    if len(matches) > 1:
        source = str(node.source or "")
        home = [m for m in matches if f"/{m.split('.')[-2]}.py:" in source]
        matches = home or matches
    if len(matches) == 1:
        found = domain.resolve_any_xref(
            env, node["refdoc"], app.builder, matches[0], node, contnode
        )
        if found:
            return found[0][1]
    return None


_SAVED: dict[str, list[str]] = {}
_BARS = re.compile(r"(?<![\\|])\|(\w[^|`]*?)\|(?!_)")
_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")


def _escape_bars(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """``|err|`` in prose means an absolute value, not a reST substitution: escape the bars
    outside literals and roles (where they are already plain text)."""
    for i, line in enumerate(lines):
        if "|" in line:
            parts = _LITERAL.split(line)
            parts[::2] = [_BARS.sub(r"\\|\1\\|", p) for p in parts[::2]]
            lines[i] = "".join(parts)


def _keep_prose(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Before napoleon: keep the docstring of a constant, attribute or property as written."""
    if what in ("data", "attribute", "property"):
        _SAVED[name] = list(lines)


def _restore_prose(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """After napoleon: put it back. Numpydoc has no inline "type: description" form, so the
    Google-style reading napoleon gives such docstrings would turn "Working set: …" into a
    type named "Working set"."""
    if name in _SAVED:
        lines[:] = _SAVED.pop(name)


def _tuples(app: Any, config: Any) -> None:
    """``nitpick_ignore`` pairs come from _config.yml as lists; Sphinx compares tuples."""
    config.nitpick_ignore = [tuple(pair) for pair in config.nitpick_ignore]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("superposition-api", ApiDirective)
    app.connect("config-inited", _tuples)
    app.connect("missing-reference", _resolve)
    app.connect("autodoc-process-docstring", _escape_bars, priority=390)
    app.connect("autodoc-process-docstring", _keep_prose, priority=400)
    app.connect("autodoc-process-docstring", _restore_prose, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
