"""One word per quantity: the public API, the command line and the glossary page agree."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import pkgutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import superposition
from superposition.cli import COMMANDS, main
from superposition.vocabulary import RETIRED, WORDS

ROOT = Path(__file__).resolve().parents[1]


def _public_modules() -> list:
    """Every public module, those of subpackages (``superposition.export.uand``) included."""
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(superposition.__path__, "superposition.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]


def _public_callables():
    seen = set()
    for mod in _public_modules():
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{mod.__name__}.{name}", obj


def test_no_public_parameter_or_field_has_a_retired_name() -> None:
    bad = []
    for qual, obj in _public_callables():
        targets = [(qual, obj)]
        if inspect.isclass(obj):
            targets += [
                (f"{qual}.{n}", f)
                for n, f in vars(obj).items()
                if not n.startswith("_") and callable(f)
            ]
            if dataclasses.is_dataclass(obj):
                bad += [
                    f"{qual} field {f.name}" for f in dataclasses.fields(obj) if f.name in RETIRED
                ]
            bad += [f"{qual}.{n}" for n, v in vars(obj).items() if n in RETIRED]
        for name, fn in targets:
            try:
                params = inspect.signature(fn).parameters
            except (TypeError, ValueError):
                continue
            bad += [f"{name}({p})" for p in params if p in RETIRED]
    assert not bad, "retired names in the public API:\n" + "\n".join(sorted(set(bad)))


def _help(argv: list[str]) -> str:
    buf = io.StringIO()
    with redirect_stdout(buf), pytest.raises(SystemExit):
        main([*argv, "--help"])
    return buf.getvalue()


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "export"])
def test_help_shows_no_retired_flag(command: str) -> None:
    text = _help([command])
    retired = ["--width", "--inputs", "--kind", "--embeddings"]
    assert not [f for f in retired if f + " " in text or f + "\n" in text], text


def test_export_help_shows_no_retired_flag() -> None:
    for kind in ("uand", "trained", "superposed", "circuit", "deep"):
        text = _help(["export", kind])
        assert "--width" not in text and "--inputs" not in text and "--embeddings" not in text


def test_the_glossary_page_lists_every_word() -> None:
    page = (ROOT / "book" / "glossary.md").read_text()
    missing = [w for w in WORDS if f"`{w}`" not in page]
    assert not missing, missing
    flags = [w.flag for w in WORDS.values() if w.flag]
    assert not [f for f in flags if f"`{f}`" not in page]
    assert not [r for r in RETIRED if f"`{r}`" not in page]
