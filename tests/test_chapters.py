"""The chapters' parameters: what CI injects exists, and the names are the glossary's words."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from superposition.vocabulary import RETIRED

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(p.stem for p in BOOK.glob("*.md") if ":tags: [parameters]" in p.read_text())
# the chapters already written in the glossary's words; the others join as they are rewritten
GLOSSARY_CHAPTERS = (
    "about",
    "background",
    "circuits",
    "correction",
    "dictionary",
    "interpretability",
    "uand_superposed",
)


def parameters(chapter: str) -> list[str]:
    """The names the chapter's ``parameters`` cell assigns."""
    text = (BOOK / f"{chapter}.md").read_text()
    cell = re.search(r"```\{code-cell\}[^\n]*\n:tags: \[parameters\]\n(.*?)```", text, re.S)
    assert cell, f"{chapter}: no parameters cell"
    return [
        t.id
        for node in ast.parse(cell.group(1)).body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    ]


def test_every_chapter_with_parameters_is_found() -> None:
    assert {"background", "circuits", "dictionary", "interpretability", "about"} <= set(CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_ci_parameters_are_parameters_of_the_chapter(chapter: str) -> None:
    """Papermill injects an unknown name without complaint: a renamed parameter left in the CI
    file would silently run the chapter at its paper-scale default."""
    ci = BOOK / "params" / "ci" / f"{chapter}.yml"
    assert ci.exists(), f"{chapter} has a parameters cell but no {ci.relative_to(ROOT)}"
    unknown = sorted(set(yaml.safe_load(ci.read_text())) - set(parameters(chapter)))
    assert not unknown, f"{ci.relative_to(ROOT)} sets names {chapter}.md does not define: {unknown}"


def retired_words(name: str) -> list[str]:
    """The retired words in a parameter name: ``width``/``kind`` as a word, ``*_inputs`` for a
    count of inputs drawn (``*_samples`` now), or a retired name itself."""
    words = name.split("_")
    found = [w for w in ("width", "kind") if w in words]
    if name.endswith("_inputs") or name == "n_inputs":
        found.append("inputs")
    return found + [name] * (name in RETIRED and not found)


def test_retired_words_are_recognised() -> None:
    assert retired_words("depth_width") == ["width"]
    assert retired_words("cli_inputs") == ["inputs"]
    assert retired_words("kind") == ["kind"]
    assert retired_words("ci_low") == ["ci_low"]
    assert retired_words("worked_input") == retired_words("embedding_kinds") == []
    assert retired_words("residual_embed_dims") == retired_words("test_samples") == []


@pytest.mark.parametrize("chapter", GLOSSARY_CHAPTERS)
def test_chapter_parameters_use_the_glossary_words(chapter: str) -> None:
    bad = {n: retired_words(n) for n in parameters(chapter) if retired_words(n)}
    assert not bad, f"{chapter}: parameters with retired words (see book/glossary.md): {bad}"


def parameter_values(chapter: str) -> dict[str, object]:
    """The literal values the chapter's ``parameters`` cell assigns."""
    text = (BOOK / f"{chapter}.md").read_text()
    cell = re.search(r"```\{code-cell\}[^\n]*\n:tags: \[parameters\]\n(.*?)```", text, re.S)
    assert cell
    out: dict[str, object] = {}
    for node in ast.parse(cell.group(1)).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:  # literals and arithmetic on them (2**17), nothing else
                code = compile(ast.Expression(node.value), chapter, "eval")
                out[node.targets[0].id] = eval(code, {"__builtins__": {}})  # noqa: S307
            except NameError:
                pass
    return out


def test_the_documented_large_sweep_config_is_valid() -> None:
    """The one command the U-AND-in-superposition chapter documents for its costlier points: the
    config passes the sweep command's checks, writes to the store the chapter reads, and its
    grids hold exactly the points the chapter reads from there, with the chapter's parameters."""
    from superposition._cli_sweep import _check_config
    from superposition.experiments import EXPERIMENTS

    cfg = yaml.safe_load((BOOK / "sweeps" / "uand_superposed_large.yaml").read_text())
    _check_config(cfg)
    assert cfg["experiment"] in EXPERIMENTS
    v = parameter_values("uand_superposed")
    assert cfg["store"] == "book/" + v["kept_store"]
    assert cfg["seeds"] == v["head_seeds"]
    assert cfg["params"] == {
        "target_error": v["target_error"], "high": v["neurons_cap"], "resolution": v["head_resolution"],
        "low": "auto", "phi": "sampled", "n_samples": v["head_samples"],
    }  # fmt: skip
    in_config = set()
    for g in cfg["grids"]:
        for w in g["weights"]:
            for s in g["sparsity"]:
                for m in g["n_features"]:
                    for k in g.get("p_scale", [None]):
                        in_config.add((w, s, m, k))
    bern, ks = "bernoulli", v["p_scales"]
    read = {(bern, 2, m, k) for m in v["kept_features"] for k in ks}
    read |= {(bern, 3, m, k) for m in v["kept_s3_features"] for k in ks}
    above = v["p_scales_above"]
    read |= {(bern, s, m, k) for s, by_m in above.items() for m, ks_ in by_m.items() for k in ks_}
    read |= {
        (bern, 2, m, k) for m in v["p_curve_features"] for k in v["p_curve_scales"] if k not in ks
    }
    read |= {("rademacher", s, m, None) for s, ms in v["kept_sign_features"].items() for m in ms}
    assert in_config == read


def test_the_documented_capacity_sweep_config_is_valid() -> None:
    """The correction chapter's costlier capacity searches: the config passes the sweep
    command's checks, writes to the store the chapter reads, with the chapter's parameters, and
    holds exactly the points the chapter reads from there."""
    from superposition._cli_sweep import _check_config
    from superposition.experiments import EXPERIMENTS
    from superposition.sweep import grid_points

    cfg = yaml.safe_load((BOOK / "sweeps" / "correction_capacity.yaml").read_text())
    _check_config(cfg)
    assert cfg["experiment"] == "capacity" and "capacity" in EXPERIMENTS
    v = parameter_values("correction")
    assert cfg["store"] == "book/" + v["kept_store"]
    assert cfg["seeds"] == v["capacity_seeds"]
    assert cfg["params"] == {
        "sparsity": v["sparsity"], "depth": v["capacity_depth"],
        "n_samples": v["capacity_samples"], "resolution": v["capacity_resolution"],
    }  # fmt: skip

    def point(design: str, d: int, budget: str | None) -> tuple:  # the chapter's capacity_point
        if design == "code":
            return (design, budget, d, 16, 32768)
        return (design, budget, d, None, (8 if budget else 32) * d)

    in_config = {
        (p["design"], p["budget"], p["embed_dim"], p.get("low"), p["high"])
        for g in cfg["grids"]
        for p in grid_points(g)
    }
    read = {
        point(dsg, d, "2d") for dsg in ("grouped", "denoiser", "code") for d in v["kept_embed_dims"]
    }
    read |= {point("denoiser", d, None) for d in v["kept_free_embed_dims"]}
    assert in_config == read
