"""Browser checks of the built site, in headless Chromium with every non-file:// request blocked.

Run by ``make test`` after the CI-scale book build (``SITE_DIR`` points at the HTML). Every page
in the table of contents must load with typeset math, loaded images, no glue placeholder and no
console error. When ``CI`` is set, a missing Chromium or site is a failure, never a skip.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI is set: the browser test must run)")
    pytest.skip(what)


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for e in entries:
            if "file" in e:
                pages.append(e["file"])
            walk(e.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return pages


@pytest.fixture(scope="module")
def site() -> Path:
    site = Path(os.environ.get("SITE_DIR", ROOT / "_build" / "ci" / "html")).resolve()
    if not (site / "index.html").exists():
        _missing(f"no built site at {site} (run `make book-ci`)")
    return site


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
        _missing(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=FLAGS, headless=True
        )
        yield ctx
        ctx.close()


def test_toc_lists_pages() -> None:
    pages = _toc_pages()
    assert "book/background" in pages and len(pages) >= 4


@pytest.mark.parametrize("page", _toc_pages())
def test_page(site: Path, browser, page: str) -> None:
    path = site / f"{page}.html"
    assert path.exists(), f"{page} is in _toc.yml but {path} was not built"
    errors: list[str] = []
    blocked: list[str] = []
    tab = browser.new_page()
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    tab.route("**/*", route)
    tab.goto(path.as_uri(), wait_until="load")
    text = tab.inner_text("article") if tab.query_selector("article") else tab.inner_text("body")
    has_math = tab.evaluate("document.querySelectorAll('.math, span.math, div.math').length") > 0
    if has_math:
        tab.wait_for_selector("mjx-container", state="attached", timeout=20_000)
        tab.wait_for_function(
            "() => !document.querySelector('article') || !document.querySelector('article').innerText.includes('\\\\(')",
            timeout=20_000,
        )
        assert tab.locator("mjx-container").count() > 0
        text = tab.inner_text("article")
        assert "\\(" not in text and "\\[" not in text, "raw TeX left on the page"
    images = tab.evaluate(
        "Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0])"
    )
    bad = [src for src, ok in images if not ok]
    assert not bad, f"images that did not load: {bad}"
    assert "No key" not in text, "a glue key was missing at build time"
    assert "{glue" not in text and "glue:text" not in text, "an unexpanded glue role"
    assert not blocked, f"the page asked for the network: {blocked}"
    assert not errors, f"console errors: {errors}"
    tab.close()


def test_background_page_content(site: Path, browser) -> None:
    """The Background chapter shows its figures, typeset math and glued numbers."""
    tab = browser.new_page()
    tab.goto((site / "book" / "background.html").as_uri(), wait_until="load")
    tab.wait_for_selector("mjx-container", state="attached", timeout=20_000)
    assert tab.locator("article img").count() >= 3
    assert tab.locator("mjx-container").count() > 10
    text = tab.inner_text("article")
    assert "Over " in text and "settings (both families)" in text
    tab.close()


def test_about_page_reports_every_chapter(site: Path, browser) -> None:
    """ "About this build" lists each executed chapter in book order, the commit and the machine."""
    tab = browser.new_page()
    tab.goto((site / "book" / "about.html").as_uri(), wait_until="load")
    rows = tab.eval_on_selector_all(
        "article table tr td:first-child", "tds => tds.map(t => t.innerText)"
    )
    text = tab.inner_text("article")
    tab.close()
    root = Path(__file__).resolve().parents[1]
    chapters = [  # the notebook chapters (not the static pages), in book order
        p.split("/")[-1]
        for p in _toc_pages()
        if p.split("/")[-1] != "about"
        and (root / f"{p}.md").exists()
        and "kernelspec:" in (root / f"{p}.md").read_text()
    ]
    executed = [r for r in rows if r in chapters]
    assert executed == [c for c in chapters if c in executed], "chapters out of book order"
    for name in chapters:
        assert name in executed, f"{name} missing from the execution table"
    assert re.search(r"Built from commit [0-9a-f]{40}", text) or "not a git checkout" in text
    assert re.search(r"\d+ cores, \d+\.\d GiB of memory", text), "no machine description"
    assert re.search(r"executed in \d+ s in all, \d+ s of wall-clock time", text)


def test_downloads_resolve(site: Path, browser) -> None:
    """Every {download} link of the ground-truth section points at a non-empty file of the site,
    and the SHA-256 the page prints is that of the file behind the link."""
    page = site / "book" / "interpretability.html"
    tab = browser.new_page()
    tab.goto(page.as_uri(), wait_until="load")
    hrefs = tab.eval_on_selector_all("a.download", "as => as.map(a => a.getAttribute('href'))")
    text = tab.inner_text("article")
    tab.close()
    names = sorted(Path(h).name for h in hrefs)
    kinds = ("uand", "superposed", "circuit", "deep", "trained")
    assert names == sorted(f"{k}.{ext}" for k in kinds for ext in ("json", "safetensors"))
    total = 0
    for href in hrefs:
        target = (page.parent / href).resolve()
        assert target.is_file() and target.stat().st_size > 0, href
        assert site in target.parents, f"{href} points outside the site"
        total += target.stat().st_size
        if target.suffix == ".safetensors":
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
            assert digest in text, f"the page does not print the SHA-256 of {target.name}"
    assert total < 8 * 2**20, f"downloads total {total / 2**20:.1f} MiB"


def test_paper_numbering_and_api_page(site: Path, browser) -> None:
    """A restated result carries the paper's number in its title, and so does a reference to it;
    the API page lists the library's entry points with their signatures."""
    tab = browser.new_page()
    tab.goto((site / "book" / "correction.html").as_uri(), wait_until="load")
    title = tab.inner_text("#lem-correction")
    assert re.search(r"Lemma\s+7 of the paper", title), title
    refs = tab.eval_on_selector_all('a[href*="lem-correction"]', "as => as.map(a => a.innerText)")
    assert refs and all("7" in r for r in refs), refs
    tab.goto((site / "book" / "api.html").as_uri(), wait_until="load")
    names = tab.eval_on_selector_all("dt.sig", "ds => ds.map(d => d.id)")
    for entry in (
        "superposition.build_uand",
        "superposition.run_deep",
        "superposition.report.glue",
    ):
        assert entry in names, f"{entry} is not on the API page"
    tab.close()
