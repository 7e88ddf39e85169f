"""The build tooling fails loudly: a failing cell, an error output or a missing glue key
stops ``make test`` instead of shipping a broken page."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"

CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{code-cell} ipython3
:tags: [parameters]

fail = True
```

```{code-cell} ipython3
from myst_nb import glue
glue("answer", 42, display=False)
if fail:
    raise RuntimeError("deliberate failure")
```

The answer is {glue:text}`answer`.
"""


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def chapter(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("book") / "chapter.md"
    src.write_text(CHAPTER)
    return src


def test_failing_cell_fails_execution_and_leaves_no_notebook(chapter: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "chapter.ipynb"
    res = _run(str(ROOT / "tools" / "execute_chapter.sh"), str(chapter), str(out))
    assert res.returncode != 0
    assert "deliberate failure" in res.stderr + res.stdout
    assert not out.exists()


def test_passing_parameters_execute(chapter: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.yml"
    params.write_text("fail: false\n")
    out = tmp_path / "chapter.ipynb"
    res = _run(str(ROOT / "tools" / "execute_chapter.sh"), str(chapter), str(out), str(params))
    assert res.returncode == 0, res.stderr
    nb = nbformat.read(out, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)


def _mini_book(tmp_path: Path, notebook: nbformat.NotebookNode) -> Path:
    book = tmp_path / "site"
    (book / "book").mkdir(parents=True)
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / name, book / name)
    (book / "tools").mkdir()
    for tool in ("dedupe_scripts.py", "api_reference.py"):
        shutil.copy(ROOT / "tools" / tool, book / "tools")
    (book / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    nbformat.write(notebook, book / "book" / "page.ipynb")
    return book


def _build(book: Path) -> subprocess.CompletedProcess:
    return _run(
        str(BIN / "jupyter-book"), "build", str(book), "-W", "-n", "--keep-going",
        "--builder", "html",
    )  # fmt: skip


def test_missing_glue_key_fails_the_strict_build(tmp_path: Path) -> None:
    """An unexecuted chapter (no glue data) cannot be shipped: the -W build fails."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_markdown_cell("# Page\n\nThe answer is {glue:text}`answer`.")]
    res = _build(_mini_book(tmp_path, nb))
    assert res.returncode != 0
    assert "No key 'answer' found in glue data" in res.stdout + res.stderr
